"""The reference for overhead: the bot's own request replayed through the SDK, with nothing else."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from google import genai
from google.genai import types


@dataclass(frozen=True, slots=True)
class SentRequest:
    """One request body exactly as the fake received it, and its digest (sorted-key JSON)."""

    body: dict[str, Any]
    sha256: str


async def sent_request(base_url: str, index: int) -> SentRequest:
    """Request ``index`` (arrival order) as the fake received it."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{base_url}/_fake/requests/{index}") as response,
    ):
        response.raise_for_status()
        data = await response.json()
    return SentRequest(data["body"], data["sha256"])


class BareCall:
    """A plain google-genai client calling ``generate_content`` with the contents and config the
    bot sent, built once through the SDK's own types (bytes decoded from the wire's base64)."""

    def __init__(self, base_url: str, model: str, sent: SentRequest) -> None:
        self.model = model
        self.contents = [types.Content.model_validate_json(json.dumps(c)) for c in sent.body["contents"]]
        self.config = types.GenerateContentConfig.model_validate_json(
            json.dumps(sent.body.get("generationConfig") or {})
        )
        # The bot's client options (v1beta, its own retries off), so both send the same thing.
        self.client = genai.Client(
            api_key="bench-key",
            http_options=types.HttpOptions(
                api_version="v1beta",
                base_url=base_url,
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )

    async def call_s(self) -> float:
        """Wall seconds of one ``generate_content`` call (the answer parsed into SDK types)."""
        started = time.perf_counter()
        response = await self.client.aio.models.generate_content(
            model=self.model, contents=self.contents, config=self.config
        )
        wall = time.perf_counter() - started
        if not any(p.inline_data for p in response.parts or ()):
            raise RuntimeError("the bare call was not answered with an image")
        return wall

    async def aclose(self) -> None:
        await self.client.aio.aclose()
        self.client.close()
