"""The ``billi`` command as a newcomer runs it: ``up`` twice on the same folder, ``migrate``, ``demo-data``."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from gateway.cli import DemoProgress, ready_block
from gateway.local_services import free_port
from market.config import Config
from market.db import DatabaseTarget, drop_database
from market.demo import DEMO_USERS
from market.migrate import available

BILLI = [sys.executable, "-m", "gateway.cli"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLI_")}
    env.update(extra)
    return env


def _get(url: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def _run_up(data_dir: Path, port: int) -> tuple[str, dict, dict]:  # type: ignore[type-arg]
    proc = subprocess.Popen([*BILLI, "up", "--items", "4"], env=_env(BILLI_DATA_DIR=str(data_dir),
                            BILLI_PORT=str(port)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = []
    try:
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            out.append(line)
            if "Ctrl-C" in line:  # the last line of the block `up` prints once everything answers
                break
        text = "".join(out)
        url = re.search(r"open (http://\S+/)app", text)
        assert url, text
        ready = _get(url.group(1) + "readyz")
        items = _get(url.group(1) + "api/items/nearby?lat=37.55&lng=126.98&radius_m=50000&limit=50")
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, text + rest
    return text, ready, items


def test_billi_up_runs_everything_from_nothing_and_again_without_duplicating(tmp_path: Path) -> None:
    port = free_port()
    first, ready, items = _run_up(tmp_path, port)
    assert ready["ok"] is True
    assert "+6 people, +4 items" in first
    # demo data counts up while it is made, and the block a newcomer needs comes last: the app (/app, not the
    # landing page nor the bank sandbox), every demo login with its password, how to stop
    assert "creating demo data: 4 items" in first and "… 4/4" in first
    block = first[first.index("Billi Market is running"):]
    assert "sandbox" not in first[:first.index("Billi Market is running")]
    assert re.search(r"open http://\S+/app\n", block)
    assert all(email in block for email, _ in DEMO_USERS) and "billi1234" in block
    assert block.index("open http://") < block.index("sandbox") < block.index("Ctrl-C")
    assert block.rstrip().endswith("Ctrl-C")
    assert len(items["items"]) == 4 and all(i["thumbnail"] for i in items["items"])
    second, ready, items = _run_up(tmp_path, port)
    assert "+0 people, +0 items" in second
    assert len(items["items"]) == 4
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split()
    assert leftovers == []  # every child service was stopped


def test_migrate_and_demo_data_against_configured_services(config: Config) -> None:
    assert config.database_url
    t = DatabaseTarget.parse(config.database_url).with_database(config.s3_bucket.replace("-", "_") + "_cli")
    env = _env(BILLI_DATABASE_URL=f"mysql://{t.user}:{t.password}@{t.host}:{t.port}/{t.database}",
               BILLI_REDIS_URL=config.redis_url or "", BILLI_S3_URL=config.s3_url or "",
               BILLI_S3_BUCKET=config.s3_bucket + "-cli", BILLI_DATA_DIR=str(config.data_dir))
    try:
        first = subprocess.run([*BILLI, "migrate"], env=env, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stderr
        assert f"applied {len(available())} migration(s)" in first.stdout
        again = subprocess.run([*BILLI, "migrate"], env=env, capture_output=True, text=True, timeout=120)
        assert "schema is up to date" in again.stdout
        demo = subprocess.run([*BILLI, "demo-data", "--items", "3"], env=env, capture_output=True, text=True,
                              timeout=120)
        assert demo.returncode == 0, demo.stderr
        assert "created 6 people and 3 items" in demo.stdout
        more = subprocess.run([*BILLI, "demo-data", "--items", "5"], env=env, capture_output=True, text=True,
                              timeout=120)
        assert "created 0 people and 2 items" in more.stdout
        archived = subprocess.run([*BILLI, "archive-chats", "--older-than-days", "0"], env=env, capture_output=True,
                                  text=True, timeout=120)
        assert archived.returncode == 0 and "archived 0 message(s) in 0 segment(s)" in archived.stdout
    finally:
        asyncio.run(drop_database(t))


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_demo_progress_counts_up_on_a_terminal_and_in_a_log() -> None:
    log = io.StringIO()
    progress = DemoProgress(log)
    for n in range(1, 201):
        progress(n, 200)
    lines = log.getvalue().splitlines()
    assert lines[0] == "  데모 데이터를 만드는 중 / creating demo data: 200 items"
    assert lines[1:] == [f"  … {n}/200" for n in (1, 20, 40, 60, 80, 100, 120, 140, 160, 180, 200)]  # a line a tenth
    terminal = _Terminal()
    progress = DemoProgress(terminal)
    for n in range(1, 5):
        progress(n, 4)
    out = terminal.getvalue()
    assert out.count("\r") == 4 and out.endswith("\r  [##############################] 4/4\n")  # one line, redrawn


def test_the_final_block_names_the_app_every_login_and_how_to_stop() -> None:
    block = ready_block("http://127.0.0.1:8080/", logins=[e for e, _ in DEMO_USERS], password="billi1234",
                        also=["은행·네이버 샌드박스 (테스트용) / bank and Naver sandbox: http://127.0.0.1:8090"])
    lines = [line.strip() for line in block.strip().splitlines()]
    assert lines[3] == "▶ 브라우저에서 여세요 / open http://127.0.0.1:8080/app"  # the app first, not the sandbox
    assert all(email in block for email, _ in DEMO_USERS) and "billi1234" in block
    assert lines[-2] == "▶ 끄기 / stop: Ctrl-C"
    alone = ready_block("http://127.0.0.1:8080/", logins=[], password=None, also=[])
    assert "sign up at http://127.0.0.1:8080/login" in alone and "billi1234" not in alone


def test_a_node_asked_for_a_taken_port_says_so_plainly_and_stops(config: Config) -> None:
    """``billi serve`` never moves a node off its port (a load balancer points at it): it says which port is taken
    and what to set, in Korean first, and exits non-zero — no traceback."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = _env(BILLI_DATABASE_URL=config.database_url or "", BILLI_REDIS_URL=config.redis_url or "",
                   BILLI_S3_URL=config.s3_url or "", BILLI_S3_BUCKET=config.s3_bucket,
                   BILLI_DATA_DIR=str(config.data_dir), BILLI_PORT=str(port))
        done = subprocess.run([*BILLI, "serve"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert f"포트 {port}" in done.stderr and "BILLI_PORT" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_a_public_node_with_the_published_token_key_refuses_to_start(config: Config) -> None:
    """The token key seals people's bank tokens and signs known-device cookies; its default is in our source. A node
    with a public address refuses it, says which variable to set (Korean first) and exits non-zero; set, the node goes
    on (here to the taken port, which proves the check passed)."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = _env(BILLI_DATABASE_URL=config.database_url or "", BILLI_REDIS_URL=config.redis_url or "",
                   BILLI_S3_URL=config.s3_url or "", BILLI_S3_BUCKET=config.s3_bucket,
                   BILLI_DATA_DIR=str(config.data_dir), BILLI_PORT=str(port),
                   BILLI_PUBLIC_URL="https://billi.example/")
        refused = subprocess.run([*BILLI, "serve"], env=env, capture_output=True, text=True, timeout=120)
        keyed = subprocess.run([*BILLI, "serve"], env={**env, "BILLI_TOKEN_KEY": "k" * 40}, capture_output=True,
                               text=True, timeout=120)
    assert refused.returncode == 2
    assert refused.stderr.startswith("공개 주소로 여는 노드는 BILLI_TOKEN_KEY") and "Traceback" not in refused.stderr
    assert keyed.returncode != 0 and f"포트 {port}" in keyed.stderr and "BILLI_TOKEN_KEY" not in keyed.stderr
