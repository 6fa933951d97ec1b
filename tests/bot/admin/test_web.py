"""The dashboard over HTTP as a client sees it: no ADMIN_TOKEN, no page; who gets in and who gets
nothing (wrong token, no cookie, a forged, expired or signed-out cookie, a form from elsewhere);
the cookie's attributes, the strict Content-Security-Policy, and Forget."""

from __future__ import annotations

from collections.abc import AsyncIterator
from html import escape
from pathlib import Path

import aiohttp
import pytest

from bot.admin.sessions import COOKIE
from bot.admin.web import CONTENT_SECURITY_POLICY
from bot.text import admin_words as words
from tests.auxil.admin import TOKEN, Dashboard, serving_dashboard
from tests.auxil.fake_gemini import FakeGemini

# What only a signed-in page holds: a chart, the people table, a seeded person's id.
DATA_MARKS = ("chart-images-by-model", 'id="people"', "alice", "U7")


@pytest.fixture
async def dashboard(fake_gemini: FakeGemini, tmp_path: Path) -> AsyncIterator[Dashboard]:
    async with serving_dashboard(fake_gemini, tmp_path) as serving:
        yield serving


def jar() -> aiohttp.CookieJar:
    return aiohttp.CookieJar(unsafe=True)  # keep cookies for 127.0.0.1


async def sign_in(client: aiohttp.ClientSession, base: str, token: str = TOKEN) -> aiohttp.ClientResponse:
    return await client.post(f"{base}/admin/sign-in", data={"token": token}, allow_redirects=False)


def no_data(text: str) -> None:
    for mark in DATA_MARKS:
        assert mark not in text, mark


async def test_without_admin_token_there_is_no_page(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    async with (
        serving_dashboard(fake_gemini, tmp_path, {"ADMIN_TOKEN": ""}) as served,
        aiohttp.ClientSession() as client,
    ):
        for method, path in (("GET", "/admin"), ("POST", "/admin/sign-in"), ("GET", "/admin/admin.css")):
            async with client.request(method, f"{served.base_url}{path}") as response:
                assert response.status == 404, path
        async with client.get(f"{served.base_url}/healthz") as alive:  # the listener itself is there
            assert alive.status == 200


async def test_the_right_token_opens_the_page_with_a_strict_session_cookie(dashboard: Dashboard) -> None:
    async with aiohttp.ClientSession(cookie_jar=jar()) as client:
        async with client.get(f"{dashboard.base_url}/admin") as first:
            assert first.status == 200
            page = await first.text()
            assert escape(words.SIGN_IN["intro"]) in page
            no_data(page)
        response = await sign_in(client, dashboard.base_url)
        assert (response.status, response.headers["Location"]) == (303, "/admin")
        cookie = response.headers["Set-Cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        for attribute in ("HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age=43200"):
            assert attribute in cookie, attribute
        assert "Secure" not in cookie  # plain HTTP here (see the next test for HTTPS)
        assert TOKEN not in cookie
        async with client.get(f"{dashboard.base_url}/admin") as signed_in:
            page = await signed_in.text()
            assert all(mark in page for mark in DATA_MARKS)


async def test_the_cookie_is_secure_when_served_over_https(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    async with (
        serving_dashboard(fake_gemini, tmp_path, {"PUBLIC_URL": "https://bot.example.com"}) as served,
        aiohttp.ClientSession() as client,
    ):
        response = await sign_in(client, served.base_url)
        assert "Secure" in response.headers["Set-Cookie"]


async def test_every_answer_carries_the_strict_content_security_policy(dashboard: Dashboard) -> None:
    assert "script-src" not in CONTENT_SECURITY_POLICY and "default-src 'none'" in CONTENT_SECURITY_POLICY
    async with aiohttp.ClientSession(cookie_jar=jar()) as client:
        answers = [await client.get(f"{dashboard.base_url}/admin")]
        answers.append(await sign_in(client, dashboard.base_url, "wrong-token-wrong-token"))
        answers.append(await client.get(f"{dashboard.base_url}/admin/image/abc"))
        await sign_in(client, dashboard.base_url)
        answers.append(await client.get(f"{dashboard.base_url}/admin"))
        answers.append(await client.get(f"{dashboard.base_url}/admin/admin.css"))
        for response in answers:
            assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
            assert response.headers["X-Frame-Options"] == "DENY"
            assert response.headers["Cache-Control"] == "no-store"
        page = await answers[3].text()
        assert "<script" not in page and "style=" not in page
        assert 'href="/admin/admin.css"' in page


async def test_a_wrong_token_a_missing_cookie_and_a_forged_one_reach_no_data(dashboard: Dashboard) -> None:
    base = dashboard.base_url
    async with aiohttp.ClientSession(cookie_jar=jar()) as client:
        wrong = await sign_in(client, base, "correct-horse-battery-staple-43")
        assert wrong.status == 401
        page = await wrong.text()
        assert escape(words.WRONG_TOKEN) in page
        no_data(page)
        assert "Set-Cookie" not in wrong.headers
    async with aiohttp.ClientSession() as client:
        real = (await sign_in(client, base)).cookies[COOKIE].value
    expires, nonce, mac = real.split(".")
    forged = [
        f"{expires}.{nonce}.{'0' * len(mac)}",  # a made-up signature
        f"{int(expires) + 99999}.{nonce}.{mac}",  # a longer life under the old signature
        f"{expires}.other{nonce}.{mac}",
        "garbage",
        "",
    ]
    for value in forged:
        async with aiohttp.ClientSession(cookies={COOKIE: value}) as client:
            async with client.get(f"{base}/admin") as response:
                page = await response.text()
                assert escape(words.SIGN_IN["intro"]) in page, value
                no_data(page)
            async with client.get(
                f"{base}/admin/forget", params={"platform": "discord", "thread": "1200"}
            ) as forget:
                assert forget.status == 403
                no_data(await forget.text())
    async with (
        aiohttp.ClientSession(cookies={COOKIE: real}) as client,  # the real one still works
        client.get(f"{base}/admin") as response,
    ):
        assert "alice" in await response.text()


async def test_signing_out_ends_the_session_for_good(dashboard: Dashboard) -> None:
    base = dashboard.base_url
    async with aiohttp.ClientSession(cookie_jar=jar()) as client:
        value = (await sign_in(client, base)).cookies[COOKIE].value
        page = await (await client.get(f"{base}/admin")).text()
        form = page.split('name="form" value="')[1].split('"')[0]
        refused = await client.post(f"{base}/admin/sign-out", data={"form": "not-the-form"})
        assert refused.status == 403  # a sign-out posted from elsewhere does nothing
        out = await client.post(f"{base}/admin/sign-out", data={"form": form})
        assert escape(words.SIGNED_OUT) in await out.text()
        assert out.cookies[COOKIE].value == ""
    async with aiohttp.ClientSession(cookies={COOKIE: value}) as replay:  # the old cookie, kept
        page = await (await replay.get(f"{base}/admin")).text()
        assert escape(words.SIGN_IN["intro"]) in page
        no_data(page)


async def test_forget_needs_the_session_and_its_form_then_deletes_the_conversation(
    dashboard: Dashboard,
) -> None:
    base, store = dashboard.base_url, dashboard.core.store
    seed = dashboard.seeds[0]
    assert seed.picture is not None
    fields = {"platform": "discord", "workspace": "g1", "channel": "c1", "thread": "1200"}
    async with aiohttp.ClientSession(cookie_jar=jar()) as client:
        await sign_in(client, base)
        confirm = await (await client.get(f"{base}/admin/forget", params=fields)).text()
        assert escape(words.FORGET_QUESTION) in confirm
        form = confirm.split('name="form" value="')[1].split('"')[0]
        stale = await client.post(f"{base}/admin/forget", data={**fields, "form": "x"})
        assert stale.status == 403 and escape(words.STALE_FORM) in await stale.text()
        assert await store.conversation(seed.key) is not None
        done = await client.post(f"{base}/admin/forget", data={**fields, "form": form}, allow_redirects=False)
        assert (done.status, done.headers["Location"]) == (303, "/admin?notice=forgotten&turns=1")
        page = await (await client.get(f"{base}/admin?notice=forgotten&turns=1")).text()
        assert escape(words.forgotten(1)) in page
    assert await store.conversation(seed.key) is None
    assert await store.load_blobs([seed.picture.sha256]) == {}


async def test_thumbnails_are_small_pngs_for_signed_in_operators_only(dashboard: Dashboard) -> None:
    seed = dashboard.seeds[0]
    assert seed.picture is not None
    url = f"{dashboard.base_url}/admin/image/{seed.picture.sha256}"
    async with aiohttp.ClientSession(cookie_jar=jar()) as client:
        assert (await client.get(url)).status == 403
        await sign_in(client, dashboard.base_url)
        thumbnail = await client.get(url)
        assert (thumbnail.status, thumbnail.content_type) == (200, "image/png")
        body = await thumbnail.read()
        assert body.startswith(b"\x89PNG") and body != seed.picture.data
        missing = await client.get(f"{dashboard.base_url}/admin/image/{'0' * 64}")
        assert missing.status == 404 and escape(words.IMAGE_GONE) in await missing.text()
