"""Listing, editing, deleting and showing items, with photos, through the REST API."""

from __future__ import annotations

import io
from datetime import timedelta

from aiohttp import FormData
from aiohttp.test_utils import TestClient
from PIL import Image

from market.items import today
from tests.conftest import image_bytes, item_fields, sign_up


def photos_form(*files: tuple[bytes, str]) -> FormData:
    form = FormData()
    for data, name in files:
        form.add_field("photo", io.BytesIO(data), filename=name, content_type="image/jpeg")
    return form


async def test_an_owner_lists_an_item_and_anyone_sees_its_detail(client: TestClient) -> None:
    owner = await sign_up(client, nickname="민지네캠핑")
    item = await owner.new_item()
    assert item["title"] == "캠핑의자 2개"
    assert item["category"]["path"] == ["캠핑/레저", "캠핑가구", "캠핑의자"]
    assert item["status"] == "available" and item["available_from"] == today().isoformat()
    async with client.get(f"/api/items/{item['id']}") as resp:
        assert resp.status == 200
        detail = (await resp.json())["item"]
    assert detail["owner"]["nickname"] == "민지네캠핑"
    assert detail["owner"]["rating"] == {"score": None, "count": 0}
    assert detail["description"] == "헬리녹스 체어원이에요.\n깨끗해요."
    assert detail["price_per_day"] == 5000 and detail["deposit"] == 30000 and detail["condition"] == "상"
    assert detail["is_mine"] is False


async def test_views_count_once_per_viewer_and_never_for_the_owner(client: TestClient) -> None:
    owner = await sign_up(client)
    viewer = await sign_up(client)
    item = await owner.new_item()
    for _ in range(3):
        await owner.call("GET", f"/api/items/{item['id']}")
    for _ in range(3):
        status, body = await viewer.call("GET", f"/api/items/{item['id']}")
    assert body["item"]["view_count"] == 1
    _, body = await owner.call("GET", f"/api/items/{item['id']}")
    assert body["item"]["view_count"] == 1


async def test_invalid_items_are_refused_with_the_field_named_and_nothing_is_stored(client: TestClient) -> None:
    owner = await sign_up(client)
    cases = [
        (item_fields(title=None), "input.required", "title"),
        (item_fields(title="a"), "input.text_length", "title"),
        (item_fields(title="가" * 61), "input.text_length", "title"),
        (item_fields(description="설" * 2001), "input.text_too_long", "description"),
        (item_fields(price_per_day=-5000), "input.money_range", "price_per_day"),
        (item_fields(price_per_day=10**12), "input.money_range", "price_per_day"),
        (item_fields(price_per_day=5000.5), "input.not_integer", "price_per_day"),
        (item_fields(price_per_day=True), "input.not_integer", "price_per_day"),
        (item_fields(price_per_day="오천원"), "input.not_integer", "price_per_day"),
        (item_fields(deposit=-1), "input.money_range", "deposit"),
        (item_fields(condition="최상"), "input.choice", "condition"),
        (item_fields(lat=35.68, lng=139.69), "input.outside_korea", "lat"),  # Tokyo
        (item_fields(lat="북위37도"), "input.not_number", "lat"),
        (item_fields(lat=float("nan")), "input.not_number", "lat"),
        (item_fields(category_id=99999), "category.not_found", "category_id"),
        (item_fields(category_id=1), "category.not_leaf", "category_id"),
        (item_fields(available_from=(today() + timedelta(days=10)).isoformat(),
                     available_until=(today() + timedelta(days=3)).isoformat()), "input.date_order",
         "available_until"),
        (item_fields(available_from="2020-01-01"), "input.number_range", "available_from"),
        (item_fields(available_from="2026-02-30"), "input.bad_date", "available_from"),
        (item_fields(owner_id=1), "input.unknown_field", None),
    ]
    for body, code, field in cases:
        status, answer = await owner.call("POST", "/api/items", json=body)
        assert status == 400, (body, answer)
        assert answer["error"]["code"] == code, (body, answer)
        assert answer["error"].get("field") == field
        assert answer["error"]["message"]
    _, mine = await owner.call("GET", "/api/me/items")
    assert mine["items"] == []


async def test_the_korean_error_uses_the_right_particle(client: TestClient) -> None:
    owner = await sign_up(client)
    _, answer = await owner.call("POST", "/api/items", json=item_fields(title=None))
    assert answer["error"]["message"] == "제목을 입력해 주세요."
    _, answer = await owner.call("POST", "/api/items", json=item_fields(price_per_day=50))
    assert answer["error"]["message"] == "하루 대여료는 100원부터 1,000,000원까지만 입력할 수 있어요."


async def test_html_and_sql_in_text_are_stored_as_plain_text(client: TestClient) -> None:
    owner = await sign_up(client)
    title = "<script>alert(1)</script>"
    description = "'; DROP TABLE items; -- <img src=x onerror=alert(1)>"
    item = await owner.new_item(title=title, description=description)
    _, body = await owner.call("GET", f"/api/items/{item['id']}")
    assert body["item"]["title"] == title and body["item"]["description"] == description
    _, mine = await owner.call("GET", "/api/me/items")
    assert len(mine["items"]) == 1  # the table is still there


async def test_only_the_owner_may_edit_or_delete_and_a_refusal_changes_nothing(client: TestClient) -> None:
    owner = await sign_up(client)
    stranger = await sign_up(client)
    item = await owner.new_item()
    status, body = await stranger.call("PATCH", f"/api/items/{item['id']}", json={"price_per_day": 100})
    assert status == 403 and body["error"]["code"] == "item.not_owner"
    status, body = await stranger.call("DELETE", f"/api/items/{item['id']}")
    assert status == 403
    async with client.patch(f"/api/items/{item['id']}", json={"price_per_day": 100}) as resp:
        assert resp.status == 401
    _, body = await owner.call("GET", f"/api/items/{item['id']}")
    assert body["item"]["price_per_day"] == 5000


async def test_the_owner_edits_fields_and_validation_applies_to_the_result(client: TestClient) -> None:
    owner = await sign_up(client)
    item = await owner.new_item()
    status, body = await owner.call("PATCH", f"/api/items/{item['id']}", json={
        "title": "캠핑의자 3개", "price_per_day": 7000, "lat": 37.5446, "lng": 127.0559, "place_name": "성수동"})
    assert status == 200, body
    assert body["item"]["title"] == "캠핑의자 3개" and body["item"]["price_per_day"] == 7000
    assert body["item"]["place_name"] == "성수동" and abs(body["item"]["lat"] - 37.5446) < 1e-6
    assert body["item"]["deposit"] == 30000  # untouched fields stay
    status, body = await owner.call("PATCH", f"/api/items/{item['id']}", json={
        "available_until": (today() - timedelta(days=1)).isoformat()})
    assert status == 400 and body["error"]["code"] == "input.date_order"
    status, body = await owner.call("PATCH", f"/api/items/{item['id']}", json={})
    assert status == 400 and body["error"]["code"] == "input.nothing_to_change"
    status, body = await owner.call("PATCH", f"/api/items/{item['id']}", json={"status": "rented"})
    assert status == 400 and body["error"]["code"] == "item.bad_status"


async def test_a_hidden_item_is_invisible_to_others_but_not_to_its_owner(client: TestClient) -> None:
    owner = await sign_up(client)
    other = await sign_up(client)
    item = await owner.new_item()
    status, _ = await owner.call("PATCH", f"/api/items/{item['id']}", json={"status": "hidden"})
    assert status == 200
    assert (await other.call("GET", f"/api/items/{item['id']}"))[0] == 404
    assert (await owner.call("GET", f"/api/items/{item['id']}"))[0] == 200


async def test_a_deleted_item_is_gone_for_everyone(client: TestClient) -> None:
    owner = await sign_up(client)
    item = await owner.new_item()
    status, _ = await owner.call("DELETE", f"/api/items/{item['id']}")
    assert status == 200
    status, body = await owner.call("GET", f"/api/items/{item['id']}")
    assert status == 404 and body["error"]["message"].startswith("물건을 찾을 수 없어요")
    assert (await owner.call("DELETE", f"/api/items/{item['id']}"))[0] == 404
    _, mine = await owner.call("GET", "/api/me/items")
    assert mine["items"] == []
    async with client.get("/api/items/nearby", params={"lat": 37.4979, "lng": 127.0276}) as resp:
        assert (await resp.json())["items"] == []


async def test_unknown_and_malformed_item_ids_are_not_found(client: TestClient) -> None:
    for path in ["/api/items/999999", "/api/items/abc", "/api/items/1%27%20OR%201=1", "/api/items/" + "9" * 40]:
        async with client.get(path) as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["message"]


async def test_photos_upload_in_order_the_first_is_the_main_one_and_they_reorder(client: TestClient) -> None:
    owner = await sign_up(client)
    item = await owner.new_item()
    red = image_bytes("JPEG", (800, 600), (220, 20, 20))
    blue = image_bytes("PNG", (600, 800), (20, 20, 220))
    status, body = await owner.call("POST", f"/api/items/{item['id']}/photos",
                                    data=photos_form((red, "a.jpg"), (blue, "b.png")))
    assert status == 201, body
    photos = body["photos"]
    assert [p["position"] for p in photos] == [0, 1]
    assert (photos[0]["width"], photos[0]["height"]) == (800, 600)
    async with client.get(photos[1]["thumbnail"]) as resp:
        thumb = Image.open(io.BytesIO(await resp.read()))
        assert max(thumb.size) <= 400 and thumb.getpixel((10, 10))[2] > 150  # the blue one
    _, detail = await owner.call("GET", f"/api/items/{item['id']}")
    assert detail["item"]["thumbnail"] == photos[0]["thumbnail"]
    status, body = await owner.call("PUT", f"/api/items/{item['id']}/photos/order",
                                    json={"order": [photos[1]["id"], photos[0]["id"]]})
    assert status == 200 and [p["id"] for p in body["photos"]] == [photos[1]["id"], photos[0]["id"]]
    _, detail = await owner.call("GET", f"/api/items/{item['id']}")
    assert detail["item"]["thumbnail"] == photos[1]["thumbnail"]
    status, body = await owner.call("PUT", f"/api/items/{item['id']}/photos/order", json={"order": [photos[0]["id"]]})
    assert status == 400 and body["error"]["code"] == "photo.bad_order"
    status, body = await owner.call("DELETE", f"/api/items/{item['id']}/photos/{photos[1]['id']}")
    assert status == 200 and [(p["id"], p["position"]) for p in body["photos"]] == [(photos[0]["id"], 0)]
    async with client.get(photos[1]["url"]) as resp:
        assert resp.status == 404  # removed from S3 too


async def test_a_fake_image_in_a_batch_stores_none_of_the_batch(client: TestClient) -> None:
    owner = await sign_up(client)
    item = await owner.new_item()
    status, body = await owner.call("POST", f"/api/items/{item['id']}/photos", data=photos_form(
        (image_bytes(), "ok.jpg"), (b"GIF89a this is not really a gif", "fake.gif")))
    assert status == 415 and body["error"]["code"] == "photo.not_image"
    assert "JPEG, PNG, WebP, GIF" in body["error"]["message"]
    _, detail = await owner.call("GET", f"/api/items/{item['id']}")
    assert detail["item"]["photos"] == []


async def test_photos_are_limited_in_size_and_number(client: TestClient, config) -> None:  # type: ignore[no-untyped-def]
    owner = await sign_up(client)
    item = await owner.new_item()
    huge = b"\xff\xd8\xff" + b"0" * (config.max_upload_bytes + 10)
    status, body = await owner.call("POST", f"/api/items/{item['id']}/photos", data=photos_form((huge, "big.jpg")))
    assert status == 413 and body["error"]["code"] == "photo.too_large"
    first = photos_form(*[(image_bytes(), f"{n}.jpg") for n in range(8)])
    assert (await owner.call("POST", f"/api/items/{item['id']}/photos", data=first))[0] == 201
    status, body = await owner.call("POST", f"/api/items/{item['id']}/photos",
                                    data=photos_form(*[(image_bytes(), f"{n}.jpg") for n in range(3)]))
    assert status == 400 and body["error"]["message"] == "사진은 물건당 10장까지 올릴 수 있어요."
    _, detail = await owner.call("GET", f"/api/items/{item['id']}")
    assert len(detail["item"]["photos"]) == 8


async def test_someone_elses_item_gets_no_photos(client: TestClient) -> None:
    owner = await sign_up(client)
    stranger = await sign_up(client)
    item = await owner.new_item()
    status, _ = await stranger.call("POST", f"/api/items/{item['id']}/photos", data=photos_form((image_bytes(), "x.jpg")))
    assert status == 403
    status, _ = await stranger.call("POST", "/api/items/424242/photos", data=photos_form((image_bytes(), "x.jpg")))
    assert status == 404


async def test_photo_location_metadata_is_stripped(client: TestClient) -> None:
    owner = await sign_up(client)
    item = await owner.new_item()
    img = Image.new("RGB", (120, 90), (10, 200, 10))
    exif = Image.Exif()
    exif[0x8825] = {2: (37.0, 29.0, 52.0), 4: (127.0, 1.0, 39.0)}  # GPS IFD
    exif[0x010F] = "Billi Test Camera"
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif)
    assert b"Billi Test Camera" in out.getvalue()
    _, body = await owner.call("POST", f"/api/items/{item['id']}/photos", data=photos_form((out.getvalue(), "gps.jpg")))
    async with client.get(body["photos"][0]["url"]) as resp:
        stored = await resp.read()
    assert b"Billi Test Camera" not in stored
    assert not Image.open(io.BytesIO(stored)).getexif()


async def test_my_items_lists_only_mine_newest_first(client: TestClient) -> None:
    a = await sign_up(client)
    b = await sign_up(client)
    first = await a.new_item(title="첫 번째")
    second = await a.new_item(title="두 번째")
    await b.new_item(title="남의 물건")
    _, mine = await a.call("GET", "/api/me/items")
    assert [i["id"] for i in mine["items"]] == [second["id"], first["id"]]


async def test_an_items_place_is_its_cell_for_everyone_but_its_owner(client: TestClient) -> None:
    owner, stranger = await sign_up(client), await sign_up(client)
    item = await owner.new_item(lat=37.5012345, lng=127.0398765)
    status, mine = await owner.call("GET", f"/api/items/{item['id']}")
    assert abs(mine["item"]["lat"] - 37.5012345) < 2e-6 and abs(mine["item"]["lng"] - 127.0398765) < 2e-6
    for path in (f"/api/items/{item['id']}", "/api/items/nearby?lat=37.5&lng=127.04&radius_m=2000"):
        status, body = await stranger.call("GET", path)
        seen = body["item"] if "item" in body else next(i for i in body["items"] if i["id"] == item["id"])
        assert (seen["lat"], seen["lng"], seen["dong"]) == (37.501875, 127.0402, "역삼동"), seen  # the cell's centre
    status, body = await stranger.call("GET", "/api/items/nearby?lat=37.5&lng=127.04&radius_m=2000")
    assert all(i["distance_m"] % 100 == 0 for i in body["items"])  # distances to 100 m
