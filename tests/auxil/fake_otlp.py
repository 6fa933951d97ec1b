"""A fake OpenTelemetry collector: OTLP/HTTP ``POST /v1/traces`` (protobuf, as the real exporter
sends it) decoded with opentelemetry-proto's own messages, the spans kept for tests to read."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.auxil.local_server import LocalServer

PROTOBUF = "application/x-protobuf"
# opentelemetry.proto.trace.v1.Span.SpanKind and Status.StatusCode, by number.
KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
STATUSES = {0: "unset", 1: "ok", 2: "error"}


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_id: str  # "" for a root span
    kind: str
    status: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    resource: dict[str, Any]


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which) if which else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


class FakeCollector(LocalServer):
    """``endpoint`` is what OTEL_EXPORTER_OTLP_ENDPOINT is set to; ``spans`` what arrived."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.posts: list[dict[str, str]] = []  # the headers of each export
        self._changed = asyncio.Condition()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        return app

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if request.content_type != PROTOBUF:
            return web.Response(status=415, text="protobuf only")
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        received = []
        for resource_spans in export.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            kind=KINDS.get(span.kind, str(span.kind)),
                            status=STATUSES.get(span.status.code, str(span.status.code)),
                            start_ns=span.start_time_unix_nano,
                            end_ns=span.end_time_unix_nano,
                            attributes=_attributes(span.attributes),
                            events=[(e.name, _attributes(e.attributes)) for e in span.events],
                            resource=resource,
                        )
                    )
        async with self._changed:
            self.posts.append(dict(request.headers))
            self.spans.extend(received)
            self._changed.notify_all()
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(), content_type=PROTOBUF)

    async def wait_for(self, predicate: Callable[[list[ReceivedSpan]], bool], limit_s: float = 20.0) -> None:
        async with asyncio.timeout(limit_s), self._changed:
            await self._changed.wait_for(lambda: predicate(self.spans))

    def children(self, span: ReceivedSpan) -> list[ReceivedSpan]:
        return sorted((s for s in self.spans if s.parent_id == span.span_id), key=lambda s: s.start_ns)


def tree(collector: FakeCollector, root: ReceivedSpan, depth: int = 0) -> list[str]:
    """The span tree under ``root`` as indented names, children in the order they started."""
    lines = ["  " * depth + root.name]
    for child in collector.children(root):
        lines += tree(collector, child, depth + 1)
    return lines
