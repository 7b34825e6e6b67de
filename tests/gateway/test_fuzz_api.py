"""schemathesis over our own /api/openapi.json: generated requests for every operation, against a real gateway
process with its rate limits lifted, as an anonymous caller and as a logged-in person. No request may make the
server fail (5xx), and every API error must come in the standard body ``{"error": {"code", "message"}}``.

The examples per operation are capped (and derandomized, so a run is repeatable); the share of requests that
got past the gates (not 401, 415 or 429) is printed, so a schema that only ever feeds the gates shows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, Phase, given, settings

from market.config import Config
from market.service import Market
from tests.conftest import sign_up
from tests.e2e.nodes import Node, start_node

EXAMPLES_PER_OPERATION = 25
GATES = {401, 415, 429}
# Enough that no generated burst is ever counted down to 429.
LIFTED = {"BILLI_UPLOAD_RATE_LIMIT": "100000", "BILLI_CHAT_RATE_LIMIT": "100000",
          "BILLI_LOGIN_MAX_FAILURES": "100000", "BILLI_LOGIN_ADDRESS_MAX_FAILURES": "100000",
          "BILLI_LOGIN_ACCOUNT_MAX_FAILURES": "100000", "BILLI_PASSWORD_RESET_MAX_REQUESTS": "100000"}
# They end the very session the logged-in run is using (or the person): fuzzed anonymously only.
ENDS_THE_SESSION = frozenset({("POST", "/api/auth/logout"), ("POST", "/api/auth/logout-everywhere"),
                              ("DELETE", "/api/me")})


@dataclass
class Tally:
    """What the generated requests got back."""

    statuses: Counter[int] = field(default_factory=Counter)
    problems: dict[tuple[str, str, int], str] = field(default_factory=dict)

    def record(self, method: str, path: str, case: Any, response: Any) -> None:
        status = response.status_code
        self.statuses[status] += 1
        if status >= 500:
            problem = response.text[:300]
        elif status >= 400 and path.startswith("/api/") and not _standard_error(response):
            problem = f"not the standard error body: {response.text[:300]}"
        else:
            return
        self.problems.setdefault((method, path, status), f"{problem}\n    {case.as_curl_command()[:1500]}")

    @property
    def reached(self) -> float:
        total = sum(self.statuses.values())
        return sum(n for s, n in self.statuses.items() if s not in GATES) / total if total else 0.0


def _standard_error(response: Any) -> bool:
    try:
        error = response.json().get("error")
    except ValueError:
        return False
    return isinstance(error, dict) and isinstance(error.get("code"), str) and isinstance(error.get("message"), str)


@pytest.fixture
def node(config: Config, market: Market) -> Iterator[Node]:
    node = start_node(config, **LIFTED)
    try:
        yield node
    finally:
        node.stop()


def _fuzz(node: Node, headers: dict[str, str], skip: frozenset[tuple[str, str]] = frozenset()) -> Tally:
    schema = schemathesis.openapi.from_url(node.url + "api/openapi.json")
    base_url = node.url.rstrip("/")
    tally = Tally()
    for result in schema.get_all_operations():
        operation = result.ok()
        method, path = operation.method.upper(), operation.path
        if (method, path) in skip:
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            tally.record(method, path, case, case.call(base_url=base_url, headers=headers, allow_redirects=False,
                                                 timeout=30))

        run()
    return tally


def _report(who: str, tally: Tally, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print(f"\nfuzz as {who}: {sum(tally.statuses.values())} requests, {tally.reached:.0%} reached a handler"
              f" (not {sorted(GATES)}); statuses {dict(sorted(tally.statuses.items()))}")


def test_generated_requests_from_an_anonymous_caller_never_break_the_server(
        node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    tally = _fuzz(node, {"Origin": node.url.rstrip("/")})
    _report("anonymous", tally, capsys)
    assert not tally.problems, "\n".join(f"{m} {p} → {s}: {text}" for (m, p, s), text in tally.problems.items())


def test_generated_requests_from_a_logged_in_person_never_break_the_server(
        node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    signed = httpx.post(node.url + "api/auth/signup", json={
        "email": "fuzz@example.com", "nickname": "퍼즈", "password": "rent4you"}, timeout=30)
    assert signed.status_code == 201, signed.text
    headers = {"Authorization": f"Bearer {signed.json()['token']}", "Origin": node.url.rstrip("/")}
    tally = _fuzz(node, headers, skip=ENDS_THE_SESSION)
    _report("a logged-in person", tally, capsys)
    assert not tally.problems, "\n".join(f"{m} {p} → {s}: {text}" for (m, p, s), text in tally.problems.items())


@pytest.mark.parametrize("content_type, body", [
    ("multipart/form-data; boundary=b",
     b'--b\r\nContent-Disposition: form-data; name="\xf0\x96\x14"\r\n\r\n1\r\n--b--\r\n'),
    ("multipart/form-data", b"--b\r\n\r\n--b--\r\n"),
    ("multipart/form-data; boundary=b", b"--b\r\nno header line\r\n"),
])
async def test_an_upload_the_server_cannot_read_is_refused_plainly(
        client: TestClient, content_type: str, body: bytes) -> None:
    """Found by the fuzzing above (schemathesis): a part header that is not valid HTTP made the upload a 500."""
    person = await sign_up(client)
    for method, path in (("PUT", "/api/me/photo"), ("POST", f"/api/items/{(await person.new_item())['id']}/photos")):
        status, answer = await person.call(method, path, data=body, headers={"Content-Type": content_type})
        assert status == 400 and answer["error"]["field"] == "photo", answer
