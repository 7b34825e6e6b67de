"""What an uploaded photo may cost: a pixel limit read from the header, a per-person upload rate checked before
anything is decoded, and a bounded number of uploads in progress — for item photos, chat images and profile
photos alike."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from gateway.app import create_app
from gateway.keys import MARKET
from market.config import Config
from market.images import process_image
from tests.conftest import Person, _clean, image_bytes, sign_up


@pytest.fixture(scope="module")
def huge_png() -> bytes:
    """6300×6300 pixels of one colour: about 40 Mpx in a file of about a hundred KiB."""
    out = io.BytesIO()
    Image.new("L", (6300, 6300), 128).save(out, format="PNG")
    assert len(out.getvalue()) < 200 * 1024
    return out.getvalue()


def photo_form(data: bytes, name: str = "photo.png") -> FormData:
    form = FormData()
    form.add_field("photo", io.BytesIO(data), filename=name, content_type="image/png")
    return form


@asynccontextmanager
async def gateway(config: Config, **settings: Any) -> AsyncIterator[TestClient]:
    """An in-process gateway whose configuration differs from the session's by ``settings``."""
    await _clean(config)
    async with TestClient(TestServer(create_app(config.replace(**settings)))) as c:
        yield c


async def stored_keys(client: TestClient, prefix: str) -> list[str]:
    store = client.app[MARKET].store
    listing = await store._s3.list_objects_v2(Bucket=store.bucket, Prefix=prefix)
    return [o["Key"] for o in listing.get("Contents", [])]


async def _item_photo(client: TestClient, person: Person, data: bytes) -> tuple[int, Any, Callable[[], Any]]:
    item = await person.new_item()

    async def nothing_stored() -> None:
        assert (await person.call("GET", f"/api/items/{item['id']}"))[1]["item"]["photos"] == []
        assert await stored_keys(client, f"items/{item['id']}/") == []

    status, body = await person.call("POST", f"/api/items/{item['id']}/photos", data=photo_form(data))
    return status, body, nothing_stored


async def _chat_image(client: TestClient, person: Person, data: bytes) -> tuple[int, Any, Callable[[], Any]]:
    owner = await sign_up(client)
    item = await owner.new_item()
    status, body = await person.call("POST", f"/api/items/{item['id']}/room")
    room = body["room"]["id"]

    async def nothing_stored() -> None:
        messages = (await person.call("GET", f"/api/rooms/{room}/messages"))[1]["messages"]
        assert [m for m in messages if m.get("image") or m.get("sender", {}).get("id") == person.id] == []
        assert await stored_keys(client, f"chat/{room}/") == []

    status, body = await person.call("POST", f"/api/rooms/{room}/images", data=photo_form(data))
    return status, body, nothing_stored


async def _profile_photo(client: TestClient, person: Person, data: bytes) -> tuple[int, Any, Callable[[], Any]]:
    async def nothing_stored() -> None:
        assert (await person.call("GET", "/api/me"))[1]["user"]["profile_photo"] is None
        assert await stored_keys(client, f"profiles/{person.id}/") == []

    status, body = await person.call("PUT", "/api/me/photo", data=photo_form(data))
    return status, body, nothing_stored


@pytest.mark.parametrize("upload", [_item_photo, _chat_image, _profile_photo],
                         ids=["item photo", "chat image", "profile photo"])
async def test_a_small_file_with_too_many_pixels_is_refused_and_nothing_is_stored(
        client: TestClient, huge_png: bytes, upload: Any) -> None:
    person = await sign_up(client)
    status, body, nothing_stored = await upload(client, person, huge_png)
    assert status == 413, body
    assert body["error"]["code"] == "photo.too_many_pixels"
    assert "1,600만 화소" in body["error"]["message"]
    await nothing_stored()


async def test_the_pixel_limit_is_a_setting_and_speaks_english_too(config: Config) -> None:
    async with gateway(config, max_image_pixels=2_500_000) as client:
        person = await sign_up(client)
        await person.call("PATCH", "/api/me", json={"locale": "en"})
        status, body = await person.call("PUT", "/api/me/photo", data=photo_form(image_bytes("PNG", (2000, 1300))))
        assert status == 413 and body["error"]["message"].startswith("The photo has too many pixels (at most 2.5 ")
        status, body = await person.call("PUT", "/api/me/photo", data=photo_form(image_bytes("PNG", (1500, 1000))))
        assert status == 200, body


async def test_uploads_over_a_persons_rate_are_refused_before_anything_is_decoded(config: Config) -> None:
    async with gateway(config, upload_rate_limit=2) as client:
        person, neighbour = await sign_up(client), await sign_up(client)
        for _ in range(2):
            status, body = await person.call("PUT", "/api/me/photo", data=photo_form(image_bytes("PNG")))
            assert status == 200, body
        photo = body["user"]["profile_photo"]
        # Not even an image: had it been decoded, the answer would be "not an image" (415)
        async with client.put("/api/me/photo", headers=person.auth,
                              data=photo_form(b"%PDF-1.7 not an image", "x.png")) as resp:
            assert resp.status == 429
            body = await resp.json()
            assert body["error"]["code"] == "photo.too_fast"
            assert 1 <= int(resp.headers["Retry-After"]) <= config.upload_rate_window_s
            assert re.search(r"\d+초 뒤에 다시 올려 주세요", body["error"]["message"])
        assert (await person.call("GET", "/api/me"))[1]["user"]["profile_photo"] == photo
        status, body = await neighbour.call("PUT", "/api/me/photo", data=photo_form(image_bytes("PNG")))
        assert status == 200, body  # the limit is the person's, not everyone's


async def _uploads_in_progress(client: TestClient) -> float:
    async with client.get("/metrics") as resp:
        text = await resp.text()
    found = re.search(r"^billi_uploads_in_progress (\S+)$", text, re.M)
    return float(found.group(1)) if found else -1.0


async def _until(condition: Callable[[], Any], what: str) -> None:
    for _ in range(200):
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def _slow_upload(client: TestClient, person: Person) -> tuple[asyncio.Task[Any], asyncio.Event]:
    """``person`` uploads a profile photo whose second half arrives only once the returned event is set; returns
    when the gateway has admitted it (the upload's task, the event)."""
    photo = image_bytes("PNG", (300, 200))
    boundary = "billi-slow-upload"
    rest = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\n"
               "Content-Type: image/png\r\n\r\n").encode() + photo[:100]
        await rest.wait()
        yield photo[100:] + f"\r\n--{boundary}--\r\n".encode()

    first = asyncio.create_task(person.call("PUT", "/api/me/photo", data=body(), headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"}))

    async def admitted() -> bool:
        return await _uploads_in_progress(client) == 1.0

    await _until(admitted, "the slow upload is in progress")
    return first, rest


async def test_when_every_upload_place_is_taken_another_upload_is_told_to_come_back_later(config: Config) -> None:
    async with gateway(config, image_workers=1, image_queue=0) as client:
        slow, other = await sign_up(client), await sign_up(client)
        first, rest = await _slow_upload(client, slow)

        async with client.put("/api/me/photo", headers=other.auth, data=photo_form(image_bytes("PNG"))) as resp:
            assert resp.status == 503
            assert (await resp.json())["error"]["code"] == "photo.busy"
            assert int(resp.headers["Retry-After"]) >= 1
        assert (await other.call("GET", "/api/me"))[1]["user"]["profile_photo"] is None

        rest.set()
        status, answer = await first
        assert status == 200 and answer["user"]["profile_photo"], answer
        assert await _uploads_in_progress(client) == 0.0
        status, answer = await other.call("PUT", "/api/me/photo", data=photo_form(image_bytes("PNG")))
        assert status == 200, answer  # the place is free again


@pytest.mark.parametrize("orientation,size", [(1, (1800, 900)), (3, (1800, 900)), (6, (900, 1800)),
                                              (8, (900, 1800))])
def test_a_photo_is_reduced_before_it_is_turned_upright(orientation: int, size: tuple[int, int]) -> None:
    """The full-size picture is never copied to be turned: the reduced one is, and still comes out upright."""
    img = Image.new("RGB", (1800, 900), (255, 255, 255))
    img.paste((200, 0, 0), (0, 0, 300, 300))  # a red corner, top left as stored
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif)
    photo = process_image(out.getvalue(), max_bytes=10 << 20, max_pixels=16_000_000)
    main = Image.open(io.BytesIO(photo.main))
    assert main.size == (photo.width, photo.height) == (1600 * size[0] // 1800, 1600 * size[1] // 1800)
    red = {1: (10, 10), 3: (main.width - 10, main.height - 10), 6: (main.width - 10, 10), 8: (10, main.height - 10)}
    r, g, b = main.getpixel(red[orientation])
    assert r > 150 and g < 80 and b < 80
    assert not main.getexif()


async def test_an_upload_that_trickles_in_is_cut_off_and_gives_its_place_back(config: Config) -> None:
    """A sender cannot hold one of the process's few upload places by sending its body a byte now and then."""
    async with gateway(config, image_workers=1, image_queue=0, upload_read_timeout_s=1.0) as client:
        slow, other = await sign_up(client), await sign_up(client)
        photo = image_bytes("PNG", (300, 200))
        boundary = "billi-trickle"
        stop = asyncio.Event()

        async def body() -> AsyncIterator[bytes]:
            yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\n"
                   "Content-Type: image/png\r\n\r\n").encode() + photo[:100]
            await stop.wait()  # the rest never comes while the gateway waits
            yield photo[100:] + f"\r\n--{boundary}--\r\n".encode()

        try:
            status, answer = await asyncio.wait_for(slow.call("PUT", "/api/me/photo", data=body(), headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}"}), 60)
        finally:
            stop.set()
        assert status == 400 and answer["error"]["code"] == "photo.too_slow", answer
        assert "다시 올려" in answer["error"]["message"]
        assert await _uploads_in_progress(client) == 0.0
        status, answer = await other.call("PUT", "/api/me/photo", data=photo_form(image_bytes("PNG")))
        assert status == 200, answer  # the place it held is free again


async def test_a_second_upload_while_the_first_is_still_on_its_way_is_refused_at_once(config: Config) -> None:
    async with gateway(config, image_workers=2, image_queue=4) as client:
        person, neighbour = await sign_up(client), await sign_up(client)
        first, rest = await _slow_upload(client, person)
        item = await person.new_item()
        async with client.post(f"/api/items/{item['id']}/photos", headers=person.auth,
                               data=photo_form(image_bytes("PNG"))) as resp:
            body_ = await resp.json()
            assert resp.status == 429, body_
            assert body_["error"]["code"] == "upload.busy"
            assert body_["error"]["message"] == "사진을 올리는 중이에요. 지금 올리는 사진이 끝난 뒤에 다시 올려 주세요."
            assert int(resp.headers["Retry-After"]) >= 1
        assert await stored_keys(client, f"items/{item['id']}/") == []
        status, answer = await neighbour.call("PUT", "/api/me/photo", data=photo_form(image_bytes("PNG")))
        assert status == 200, answer  # someone else's upload is not held up

        rest.set()
        status, answer = await first
        assert status == 200, answer
        status, answer = await person.call("PUT", "/api/me/photo", data=photo_form(image_bytes("PNG")))
        assert status == 200, answer  # once the first is done, the next is taken
