"""``billi up`` without a mail server runs a mail sink of its own and prints the reset links people ask for, so a
forgotten password can be reset on a developer's machine."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from gateway.local_services import free_port
from tests.e2e.test_cli import BILLI, _env


def _post(url: str, body: dict[str, str]) -> dict:  # type: ignore[type-arg]
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def _read_until(proc: subprocess.Popen[str], pattern: str, out: list[str]) -> re.Match[str] | None:
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            return None
        out.append(line)
        if found := re.search(pattern, line):
            return found
    return None


def test_billi_up_prints_the_reset_link_a_person_asked_for(tmp_path: Path) -> None:
    proc = subprocess.Popen([*BILLI, "up", "--no-demo"], env=_env(BILLI_DATA_DIR=str(tmp_path),
                            BILLI_PORT=str(free_port())), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out: list[str] = []
    try:
        opened = _read_until(proc, r"open (http://\S+/)app", out)
        assert opened, "".join(out)
        assert _read_until(proc, r"Ctrl-C", out), "".join(out)
        assert any("mail sink" in line for line in out), "".join(out)
        url = opened.group(1)
        _post(url + "api/auth/signup", {"email": "forgot@up.example", "nickname": "잊은이웃", "password": "rent4you"})
        answer = _post(url + "api/auth/password-reset", {"email": "forgot@up.example"})
        assert "30분" in answer["message"]
        link = _read_until(proc, r"(http://\S+/password/reset#[A-Za-z0-9_-]{43})", out)
        assert link and link.group(1).startswith(url), "".join(out)
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, "".join(out) + rest
