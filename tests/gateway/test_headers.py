"""What our answers say besides their body: no cache keeps a person's answers, no banner names our software, the
metrics are for operators, a client cannot write lines of our log, and the addresses we hand to Naver and the bank
are our own whatever Host header a request carries."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.conftest import image_bytes, sign_up
from tests.gateway.test_items_api import photos_form


async def test_personal_answers_are_never_stored_and_no_answer_names_our_server(client: TestClient) -> None:
    person = await sign_up(client)
    for path in ("/api/me", "/api/me/notifications", "/api/nothing-here", "/me"):  # JSON, an error, a page
        async with client.get(path, headers=person.auth) as resp:
            assert resp.status in (200, 404), path
            assert resp.headers["Cache-Control"] == "no-store", path
            assert "Server" not in resp.headers, (path, resp.headers.get("Server"))
    # what is the same for everyone keeps its caching
    item = await person.new_item()
    status, body = await person.call("POST", f"/api/items/{item['id']}/photos",
                                     data=photos_form((image_bytes(), "a.jpg")))
    photo = body["photos"][0]["url"]
    async with client.get(photo) as resp:
        assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        etag = resp.headers["ETag"]
        assert "Server" not in resp.headers
    async with client.get(photo, headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304 and resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    async with client.get("/static/app.js") as resp:
        assert resp.status == 200 and "no-store" not in resp.headers.get("Cache-Control", "")
        assert "Server" not in resp.headers
