"""OpenTelemetry traces (OTEL_EXPORTER_OTLP_ENDPOINT, with the ``otel`` extra): an ``Observer``
that passes everything on to another (the turn log, the metrics) and makes each turn a span, with
a child span for each download, model call, database call and post, sent over OTLP/HTTP.

Only ``build_tracing`` imports OpenTelemetry, and only when the endpoint is set: without it the
package need not be installed and nothing of it is loaded. Children are told after the fact
(``Observer`` hears how long a thing took once it is done), so their spans are written with the
start and end they had, under the turn's span, which is the current one while the turn runs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bot.observing.metrics import OPERATION, _platform, _word
from bot.observing.watch import Watch, turn_outcome
from bot.ports import Observer, TurnWatch
from bot.vocabulary import ModelCall

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import SpanKind, Tracer
    from opentelemetry.util.types import AttributeValue

log = logging.getLogger(__name__)

SERVICE_NAME = "nano-banana-bot"  # unless OTEL_SERVICE_NAME says otherwise
TRACES_PATH = "/v1/traces"  # OTLP/HTTP: appended to the endpoint, as the SDK does for its variable
PROVIDER = "gcp.gemini"  # gen_ai.provider.name of the Gemini API
# Turn outcomes that are errors, and model outcomes that are not (a blocked prompt is an answer).
_ERROR_TURNS = frozenset({"failed", "crashed"})
_FINE_CALLS = frozenset({"image", "text_only", "prompt_blocked", "image_blocked"})
Attributes = Mapping[str, "AttributeValue"]


class Tracing:
    """Follows turns for ``inner`` and writes them as spans with ``tracer``; ``provider`` (which
    sends them in batches, from a thread of its own) is flushed by ``close``."""

    def __init__(self, inner: Observer, tracer: Tracer, provider: TracerProvider | None = None) -> None:
        from opentelemetry import context, trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self._inner = inner
        self._tracer = tracer
        self._provider = provider
        self._context, self._trace = context, trace
        self._kinds: tuple[SpanKind, SpanKind] = (SpanKind.INTERNAL, SpanKind.CLIENT)
        self._error = Status(StatusCode.ERROR)

    @contextmanager
    def turn(self, platform: str, kind: str, conversation: str = "") -> Iterator[TurnWatch]:
        attributes = {
            "nanobanana.platform": _platform(platform),
            "nanobanana.conversation": conversation,
            "nanobanana.turn.kind": _word(kind),
        }
        span = self._tracer.start_span("turn " + _word(kind), kind=self._kinds[0], attributes=attributes)
        token = self._context.attach(self._trace.set_span_in_context(span))
        cancelled, watch = False, None
        try:
            with self._inner.turn(platform, kind, conversation) as watch:
                if isinstance(watch, Watch):
                    watch.observer = self  # what the turn tells its watch reaches the spans
                yield watch
        except BaseException as exc:
            cancelled = isinstance(exc, asyncio.CancelledError)
            raise
        finally:
            self._context.detach(token)
            status = watch.status if isinstance(watch, Watch) else None
            calls = watch.model_outcomes if isinstance(watch, Watch) else []
            outcome = turn_outcome(status, calls, cancelled=cancelled)
            span.set_attribute("nanobanana.turn.outcome", outcome)
            if outcome in _ERROR_TURNS:
                span.set_status(self._error)
            span.end()

    def _child(
        self, name: str, seconds: float, attributes: Attributes, *, client: bool, failed: bool
    ) -> None:
        """A span of the current turn that started ``seconds`` ago and has just ended."""
        if not self._trace.get_current_span().get_span_context().is_valid:
            return  # not inside a turn (a start-up check, a background job)
        end = time.time_ns()
        span = self._tracer.start_span(
            name,
            kind=self._kinds[1] if client else self._kinds[0],
            attributes=attributes,
            start_time=end - max(0, int(seconds * 1e9)),
        )
        if failed:
            span.set_status(self._error)
        span.end(end_time=end)

    # -- Observer ----------------------------------------------------------------------------

    def model_called(self, call: ModelCall) -> None:
        self._inner.model_called(call)
        model, outcome = _word(call.model), _word(call.outcome)
        attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": OPERATION,
            "gen_ai.provider.name": PROVIDER,
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": call.input_tokens,
            # Billed output: the image, the text and the thinking (also told on its own).
            "gen_ai.usage.output_tokens": call.output_image_tokens
            + call.output_text_tokens
            + call.thinking_tokens,
            "gen_ai.usage.reasoning.output_tokens": call.thinking_tokens,
            "nanobanana.outcome": outcome,
            "nanobanana.images": call.images,
        }
        if call.finish_reason:
            attributes["gen_ai.response.finish_reasons"] = (_word(call.finish_reason),)
        failed = call.outcome not in _FINE_CALLS
        if failed:
            attributes["error.type"] = outcome
        self._child(f"{OPERATION} {model}", call.seconds, attributes, client=True, failed=failed)

    def store_round_trip(self, operation: str, seconds: float) -> None:
        self._inner.store_round_trip(operation, seconds)
        name = _word(operation)
        self._child(f"store {name}", seconds, {"db.operation.name": name}, client=True, failed=False)

    def downloaded(self, platform: str, seconds: float, failure: str | None) -> None:
        self._inner.downloaded(platform, seconds, failure)
        attributes: dict[str, AttributeValue] = {"nanobanana.platform": _platform(platform)}
        if failure is not None:
            attributes["error.type"] = _word(failure)
        self._child("download", seconds, attributes, client=True, failed=failure is not None)

    def posted(self, platform: str, what: str, seconds: float, failed: bool) -> None:
        self._inner.posted(platform, what, seconds, failed)
        attributes = {"nanobanana.platform": _platform(platform), "nanobanana.post": _word(what)}
        self._child("post " + _word(what), seconds, attributes, client=True, failed=failed)

    def queue_waited(self, seconds: float) -> None:
        self._inner.queue_waited(seconds)

    def download_failed(self, platform: str, reason: str) -> None:
        self._inner.download_failed(platform, reason)

    def platform_error(self, platform: str, method: str, status: str) -> None:
        self._inner.platform_error(platform, method, status)
        span = self._trace.get_current_span()
        if span.is_recording():
            span.add_event(
                "platform API error", {"nanobanana.method": _word(method), "nanobanana.status": status}
            )

    def sample(self, gauge: str, read: Callable[[], float]) -> None:
        self._inner.sample(gauge, read)

    def close(self) -> None:
        """Send what is still waiting (blocking: call it in a thread) and stop the exporter."""
        if self._provider is not None:
            self._provider.shutdown()


def build_tracing(inner: Observer, endpoint: str | None) -> Tracing | None:
    """Traces sent to ``endpoint`` (OTEL_EXPORTER_OTLP_ENDPOINT; its /v1/traces), or None when it
    is unset, or when the ``otel`` extra is not installed (said once in the log). Other OTEL_*
    variables (headers, timeouts, OTEL_SERVICE_NAME, OTEL_BSP_*) are read by the SDK itself."""
    if not endpoint:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "traces off: OTEL_EXPORTER_OTLP_ENDPOINT is set but the otel extra is not installed",
            extra={"hint": "pip install 'nano-banana-bot[otel]'"},
        )
        return None
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + TRACES_PATH)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    where = urlsplit(endpoint)
    log.info("traces on", extra={"endpoint": f"{where.scheme}://{where.hostname}:{where.port or ''}"})
    return Tracing(inner, provider.get_tracer("nanobanana"), provider)
