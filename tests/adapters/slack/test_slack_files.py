"""Slack attachments through the real slack-sdk and aiohttp against the fake Slack's file host:
every way a file can be unavailable ends in its own plain sentence, and the token never leaves."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.files import SlackFiles
from bot.entry.service import AttachmentUnavailable
from tests.auxil import fake_slack as fs
from tests.auxil import image_factory as img
from tests.auxil.fake_slack import FakeSlack

MAX_BYTES = 200_000
FIELDS = {"file_id", "slack_error", "file", "status", "error"}
PNG = img.png()


@dataclass
class Files:
    slack: FakeSlack
    files: SlackFiles

    def ref_name(self, file: dict[str, Any]) -> str:
        return self.files.refs([file])[0].filename

    async def load(self, file: dict[str, Any]) -> bytes:
        return await self.files.refs([file])[0].load()

    async def refusal(self, file: dict[str, Any]) -> str:
        with pytest.raises(AttachmentUnavailable) as refused:
            await self.load(file)
        return refused.value.user_message

    def auth_sent(self) -> list[bool]:
        """For each request to the file host, in order: did it carry the bot token?"""
        return [r.authorization == f"Bearer {self.slack.bot_token}" for r in self.slack.file_requests]


def slack_files(
    slack: FakeSlack, session: aiohttp.ClientSession, api_url: str | None = None, max_bytes: int = MAX_BYTES
) -> SlackFiles:
    url = api_url or slack.api_url
    return SlackFiles(
        session=session,
        client=AsyncWebClient(token=slack.bot_token, base_url=url, session=session),
        token=slack.bot_token,
        api_url=url,
        max_bytes=max_bytes,
    )


@pytest.fixture
async def files() -> AsyncIterator[Files]:
    async with FakeSlack() as slack, aiohttp.ClientSession() as session:
        yield Files(slack, slack_files(slack, session))


def sign_in(name: str) -> str:
    return (
        f"{name} could not be downloaded from Slack (got a sign-in page instead of the file); "
        "check the app has the files:read scope and try again."
    )


def deleted(name: str) -> str:
    return f"{name} is no longer on Slack (it was deleted); attach it again."


def failed(name: str) -> str:
    return f"I couldn't download {name} from Slack; attach it again."


async def test_a_hosted_file_downloads_once_with_the_token(files: Files) -> None:
    file = files.slack.host_file("cat.png", PNG)
    ref = files.files.refs([file])[0]
    assert (ref.filename, ref.mime_type, ref.size) == ("cat.png", "image/png", len(PNG))
    assert await ref.load() == PNG
    assert files.auth_sent() == [True]
    assert files.slack.file_requests[0].path.endswith("/cat.png")


@pytest.mark.parametrize("missing", ["url_private", "url_private_download"])
async def test_either_private_url_is_enough(files: Files, missing: str) -> None:
    file = files.slack.host_file("cat.png", PNG, fields={missing: None})
    assert await files.load(file) == PNG
    assert files.auth_sent() == [True]
    assert files.slack.calls_to("files.info") == []  # a file object with a URL needs no lookup


async def test_a_file_on_another_host_is_never_fetched(files: Files) -> None:
    async with fs.ForeignHost(body=PNG, content_type="image/png") as foreign:
        file = files.slack.host_file("cat.png", PNG, url=foreign.url("/files-pri/T0FAKE-F1/cat.png"))
        assert await files.refusal(file) == (
            "cat.png is a link to a file stored outside Slack, so I can't open it; "
            "upload the image itself and try again."
        )
        assert foreign.requests == []


async def test_the_declared_size_and_type_reach_the_core_before_any_download(files: Files) -> None:
    """The core refuses a file by its declared size without loading it; that needs the size."""
    file = files.slack.host_file("huge.png", PNG, fields={"size": 900_000_000})
    ref = files.files.refs([file])[0]
    assert (ref.size, ref.mime_type) == (900_000_000, "image/png")
    odd = files.files.refs([{**file, "size": "12", "mimetype": ""}])[0]
    assert (odd.size, odd.mime_type) == (None, None)
    assert files.slack.file_requests == []


async def test_deleted_file_in_the_event(files: Files) -> None:
    tombstone = {"id": "F0DELETED", "mode": "tombstone"}
    assert await files.refusal(tombstone) == deleted("The attachment")
    old_shape = files.slack.host_file("gone.png", PNG, fields={"is_deleted": True})
    assert await files.refusal(old_shape) == deleted("gone.png")
    assert files.slack.file_requests == [] and files.slack.calls_to("files.info") == []


async def test_deleted_file_found_by_files_info(files: Files) -> None:
    connect = files.slack.host_file("gone.png", PNG, connect=True, fields={"mode": "tombstone"})
    assert await files.refusal(connect) == deleted("gone.png")
    files.slack.fail("files.info", "file_deleted")
    assert await files.refusal(files.slack.host_file("gone.png", PNG, connect=True)) == deleted(
        "The attachment"
    )
    assert files.slack.file_requests == []


async def test_deleted_or_hidden_files_without_urls_are_not_looked_up(files: Files) -> None:
    assert await files.refusal({"id": "F0GONE", "name": "gone.png", "is_deleted": True}) == deleted(
        "gone.png"
    )
    assert await files.refusal({"id": "F0HIDDEN", "mode": "hidden_by_limit"}) == (
        "The attachment is hidden by this workspace's plan limits, so I can't read it; attach it again."
    )
    assert files.slack.calls_to("files.info") == [] and files.slack.file_requests == []


async def test_file_hidden_by_plan_limits(files: Files) -> None:
    hidden = files.slack.host_file("old.png", PNG, fields={"mode": "hidden_by_limit"})
    assert await files.refusal(hidden) == (
        "old.png is hidden by this workspace's plan limits, so I can't read it; attach it again."
    )
    assert files.slack.file_requests == []


@pytest.mark.parametrize(
    "fields",
    [{"mode": "external"}, {"is_external": True}, {"url_private": None, "url_private_download": None}],
)
async def test_a_link_to_a_file_outside_slack_is_explained(files: Files, fields: dict[str, Any]) -> None:
    file = files.slack.host_file("doc.png", PNG, fields=fields, connect=True)
    assert await files.refusal(file) == (
        "doc.png is a link to a file stored outside Slack, so I can't open it; "
        "upload the image itself and try again."
    )
    assert files.slack.file_requests == []


async def test_slack_connect_file_is_resolved_with_files_info(files: Files) -> None:
    file = files.slack.host_file("shared.png", PNG, connect=True)
    assert files.ref_name(file) == "The attachment"  # no name until files.info answers
    assert await files.load(file) == PNG
    assert [c.params["file"] for c in files.slack.calls_to("files.info")] == [file["id"]]


async def test_a_file_with_urls_but_check_file_info_still_asks_files_info(files: Files) -> None:
    file = files.slack.host_file("shared.png", PNG)
    assert await files.load({**file, "file_access": "check_file_info"}) == PNG
    assert len(files.slack.calls_to("files.info")) == 1
    assert await files.load(file) == PNG
    assert len(files.slack.calls_to("files.info")) == 1  # a full file object needs no lookup


async def test_files_info_refusals_name_the_file_when_it_has_a_name(files: Files) -> None:
    connect = files.slack.host_file("secret.png", PNG, connect=True)
    files.slack.fail("files.info", "file_not_found", "file_not_found")
    assert await files.refusal(connect) == (
        "Slack wouldn't let me read the attached file (it may be shared from another organization); "
        "download it and attach it here again."
    )
    assert await files.refusal({**connect, "title": "Quarterly chart"}) == (
        "Slack wouldn't let me read Quarterly chart (it may be shared from another organization); "
        "download it and attach it here again."
    )
    files.slack.fail("files.info", "file_not_found")
    assert await files.refusal({**connect, "name": "chart.png"}) == (
        "Slack wouldn't let me read chart.png (it may be shared from another organization); "
        "download it and attach it here again."
    )


async def test_failures_are_logged_with_what_an_operator_needs(
    files: Files, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack.files")
    connect = files.slack.host_file("secret.png", PNG, connect=True)
    files.slack.fail("files.info", "file_not_found")
    await files.refusal(connect)
    await files.refusal(files.slack.host_file("pic.png", PNG, status=500))
    await files.refusal(files.slack.host_file("cut.png", PNG, drop=True))
    logged = [(r.getMessage(), {k: v for k, v in r.__dict__.items() if k in FIELDS}) for r in caplog.records]
    assert logged == [
        ("files.info failed", {"file_id": connect["id"], "slack_error": "file_not_found"}),
        ("file download failed", {"file": "pic.png", "status": 500}),
        ("file download failed", {"file": "cut.png", "error": "ClientPayloadError"}),
    ]


async def test_a_file_without_id_or_url_cannot_be_found(files: Files) -> None:
    assert (
        await files.refusal({"name": "ghost.png"}) == "I couldn't find ghost.png on Slack; attach it again."
    )
    assert files.slack.calls_to("files.info") == []


async def test_files_info_without_a_file_object(files: Files) -> None:
    connect = files.slack.host_file("odd.png", PNG, connect=True)
    files.slack.answer("files.info", {"file": None})
    assert await files.refusal(connect) == "I couldn't find the attachment on Slack; attach it again."


async def test_files_info_unreachable(files: Files) -> None:
    async with aiohttp.ClientSession() as session:
        # Nothing listens on the API URL any more: a network failure, not a Slack error.
        closed = FakeSlack()
        await closed.start()
        api_url = closed.api_url
        await closed.close()
        offline = Files(files.slack, slack_files(files.slack, session, api_url))
        offline.files._client.retry_handlers.clear()
        file = files.slack.host_file("far.png", PNG, connect=True)
        assert await offline.refusal({**file, "name": "far.png"}) == (
            "I couldn't reach Slack to fetch far.png; attach it again."
        )


@pytest.mark.parametrize(
    ("status", "sentence"), [(404, deleted), (410, deleted), (401, sign_in), (403, sign_in)]
)
async def test_file_host_error_statuses(files: Files, status: int, sentence: Any) -> None:
    file = files.slack.host_file("pic.png", PNG, status=status)
    assert await files.refusal(file) == sentence("pic.png")
    assert files.auth_sent() == [True]


async def test_an_unexpected_status_is_a_plain_download_failure(files: Files) -> None:
    file = files.slack.host_file("pic.png", PNG, status=500)
    assert await files.refusal(file) == failed("pic.png")


async def test_a_connection_dropped_mid_download(files: Files) -> None:
    file = files.slack.host_file("pic.png", PNG, drop=True)
    assert await files.refusal(file) == failed("pic.png")
    assert len(files.slack.file_requests) == 1
    unnamed = files.slack.host_file("x.png", PNG, drop=True, fields={"name": None, "title": None})
    assert await files.refusal(unnamed) == failed("the attachment")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_relative_redirect_is_followed_without_the_token(files: Files, status: int) -> None:
    file = files.slack.host_file("pic.png", PNG, redirects=1, redirect_status=status)
    assert await files.load(file) == PNG
    # aiohttp would keep the token on a same-host redirect; the bot never sends it after one.
    assert files.auth_sent() == [True, False]


async def test_three_redirects_are_followed_and_a_fourth_is_one_too_many(files: Files) -> None:
    three = files.slack.host_file("three.png", PNG, redirects=3)
    assert await files.load(three) == PNG
    assert files.auth_sent() == [True, False, False, False]
    files.slack.file_requests.clear()
    four = files.slack.host_file("four.png", PNG, redirects=4)
    assert await files.refusal(four) == sign_in("four.png")
    assert len(files.slack.file_requests) == 4


async def test_a_redirect_without_location_is_a_download_failure(files: Files) -> None:
    file = files.slack.host_file("pic.png", PNG, status=302)
    assert await files.refusal(file) == failed("pic.png")


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (PNG, "text/html"),  # the header alone
        (PNG, "Text/HTML; charset=utf-8"),
        (PNG, "application/xhtml+xml"),
        (fs.SIGN_IN_PAGE.encode(), "image/png"),  # the body alone
        (b"  \n<html><body>Sign in</body></html>", "application/octet-stream"),
        (b"<HTML><body>Sign in</body></HTML>", ""),  # and no Content-Type at all
    ],
)
async def test_a_sign_in_page_is_recognised_by_either_signal(
    files: Files, data: bytes, content_type: str
) -> None:
    file = files.slack.host_file("pic.png", data, content_type=content_type)
    assert await files.refusal(file) == sign_in("pic.png")


async def test_a_file_without_content_type_still_downloads(files: Files) -> None:
    file = files.slack.host_file("pic.png", PNG, content_type="")
    assert await files.load(file) == PNG


async def test_a_body_that_merely_mentions_html_is_not_a_sign_in_page(files: Files) -> None:
    data = b"GIF89a <html> in a comment"
    file = files.slack.host_file("pic.gif", data, "image/gif")
    assert await files.load(file) == data


async def test_a_huge_file_is_read_only_just_past_the_limit(files: Files) -> None:
    big = b"\x89PNG" + b"\0" * (3 * MAX_BYTES)
    file = files.slack.host_file("big.png", big)
    data = await files.load(file)
    assert MAX_BYTES < len(data) <= MAX_BYTES + 64 * 1024
    exact = b"\x89PNG" + b"\0" * (MAX_BYTES - 4)
    assert await files.load(files.slack.host_file("exact.png", exact)) == exact


async def test_a_file_one_byte_over_the_limit_is_not_cut_to_the_limit(files: Files) -> None:
    """The core refuses a file longer than the limit; a file cut at exactly the limit would pass."""
    async with aiohttp.ClientSession() as session:
        tight = slack_files(files.slack, session, max_bytes=64 * 1024)
        over = b"\x89PNG" + b"\0" * (64 * 1024 - 3)
        ref = tight.refs([files.slack.host_file("over.png", over)])[0]
        assert len(await ref.load()) == len(over)


@pytest.mark.parametrize(
    ("file", "shown"),
    [
        ({"name": "cat.png", "title": "A cat"}, "cat.png"),
        ({"title": "Quarterly chart"}, "Quarterly chart"),
        ({"name": "", "title": ""}, "The attachment"),
        ({}, "The attachment"),
        ({"name": "../../etc/passwd.png"}, "passwd.png"),
        ({"name": "C:\\Users\\ann\\cat.png"}, "cat.png"),
        ({"name": "dir/"}, "The attachment"),
        ({"name": "  bad\u0007\nname.png  "}, "badname.png"),
        ({"name": "x" * 80}, "x" * 80),
        ({"name": "y" * 81}, "y" * 79 + "…"),
        ({"name": "z" * 300 + ".png"}, "z" * 79 + "…"),
    ],
)
def test_display_names_are_safe_in_a_sentence(files: Files, file: dict[str, Any], shown: str) -> None:
    assert files.ref_name(file) == shown


async def test_a_long_name_is_shortened_in_the_sentence_too(files: Files) -> None:
    file = files.slack.host_file("w" * 120 + ".png", PNG, status=404)
    assert await files.refusal(file) == deleted("w" * 79 + "…")


def test_refs_ignores_what_is_not_a_list_of_files(files: Files) -> None:
    assert files.files.refs("cat.png") == ()
    assert files.files.refs(b"x") == ()
    assert files.files.refs({"name": "cat.png"}) == ()
    assert files.files.refs(None) == ()
    assert [r.filename for r in files.files.refs([{"name": "a.png"}, "junk", {"name": "b.png"}])] == [
        "a.png",
        "b.png",
    ]
