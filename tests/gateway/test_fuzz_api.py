"""Requests the server cannot even parse are the sender's mistake: a plain 400 in the standard body, never a 500."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import sign_up


@pytest.mark.parametrize("content_type, body", [
    ("multipart/form-data; boundary=b",
     b'--b\r\nContent-Disposition: form-data; name="\xf0\x96\x14"\r\n\r\n1\r\n--b--\r\n'),
    ("multipart/form-data", b"--b\r\n\r\n--b--\r\n"),
    ("multipart/form-data; boundary=b", b"--b\r\nno header line\r\n"),
])
async def test_an_upload_the_server_cannot_read_is_refused_plainly(
        client: TestClient, content_type: str, body: bytes) -> None:
    """Found by fuzzing: a part header that is not valid HTTP made the upload a 500."""
    person = await sign_up(client)
    for method, path in (("PUT", "/api/me/photo"), ("POST", f"/api/items/{(await person.new_item())['id']}/photos")):
        status, answer = await person.call(method, path, data=body, headers={"Content-Type": content_type})
        assert status == 400 and answer["error"]["field"] == "photo", answer
