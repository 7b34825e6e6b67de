"""Health, readiness, metrics, the OpenAPI document, media access and unknown routes."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from gateway.app import all_routes
from gateway.routing import openapi_path


async def test_health_and_readiness_check_every_backing_service(client: TestClient) -> None:
    async with client.get("/healthz") as r:
        assert r.status == 200
    async with client.get("/readyz") as r:
        assert r.status == 200
        assert await r.json() == {"ok": True, "checks": {"database": True, "redis": True, "s3": True}}


async def test_metrics_count_requests_by_route(client: TestClient) -> None:
    async with client.get("/healthz"):
        pass
    async with client.get("/metrics") as r:
        text = await r.text()
    assert 'billi_http_requests_total{method="GET",route="/healthz",status="200"}' in text


async def test_the_openapi_document_describes_exactly_the_routes_served(client: TestClient) -> None:
    async with client.get("/api/openapi.json") as r:
        doc = await r.json()
    assert doc["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    served = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if route.method == "HEAD" or path is None or path.startswith(("/static", "/socket.io")):  # not REST
            continue
        served.add((openapi_path(path), route.method))
    assert documented == served
    assert {(openapi_path(r.path), r.method) for r in all_routes()} == served
    nearby = doc["paths"]["/api/items/nearby"]["get"]
    assert {"lat", "lng", "radius_m", "cursor"} <= {p["name"] for p in nearby["parameters"]}


async def test_unknown_routes_and_methods_answer_in_json(client: TestClient) -> None:
    async with client.get("/api/nothing-here") as r:
        assert r.status == 404
        assert (await r.json())["error"]["message"] == "요청한 주소를 찾을 수 없어요."
    async with client.delete("/api/categories") as r:
        assert r.status == 405
        assert (await r.json())["error"]["code"] == "service.method"


async def test_media_serves_only_public_photos(client: TestClient) -> None:
    for path in ["/media/secret/evidence.jpg", "/media/items/../profiles/x.jpg", "/media/items/none.jpg"]:
        async with client.get(path) as r:
            assert r.status == 404


async def test_the_start_page_is_html_with_a_strict_content_security_policy(client: TestClient) -> None:
    async with client.get("/") as r:
        assert r.status == 200
        assert "빌리마켓" in await r.text()
        csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]


async def test_the_category_tree_has_three_levels(client: TestClient) -> None:
    async with client.get("/api/categories") as r:
        tree = (await r.json())["categories"]
    assert len(tree) >= 10
    names = [c["name"] for c in tree]
    assert "캠핑/레저" in names and "유아동" in names
    for top in tree:
        assert top["children"], top["name"]
        for mid in top["children"]:
            assert mid["level"] == 2 and mid["children"]
            assert all(leaf["level"] == 3 and leaf["children"] == [] for leaf in mid["children"])
