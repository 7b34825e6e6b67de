"""`billi up` always comes back: after it was killed (its services outlive it), after a failed first database
initialisation, over a pid now used by another program, and when a port it remembers — or the gateway's own — was
taken meanwhile. Every service here is the test's own, under its temporary folder."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.local_services import LocalServices, ServiceError, free_port
from market.config import Config
from market.db import Database
from tests.e2e.nodes import start_node
from tests.e2e.test_cli import BILLI, _env, _get

FAILING_INSTALL_DB = """#!/bin/sh
# mariadb-install-db failing half-way, as it did for a newcomer: system tables begun, no root user
for a in "$@"; do case "$a" in --datadir=*) dir="${a#--datadir=}";; esac; done
mkdir -p "$dir/mysql" && echo half > "$dir/mysql/global_priv.MAD"
echo "ERROR: could not create the root user" >&2
exit 1
"""


@dataclass
class Up:
    """One `billi up` on a data folder, its output in a file (a pipe nobody reads would stall it)."""

    proc: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, data_dir: Path, port: int, name: str) -> Up:
        log = data_dir.parent / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([*BILLI, "up", "--items", "4"], stdout=out, stderr=subprocess.STDOUT,
                                    env=_env(BILLI_DATA_DIR=str(data_dir), BILLI_PORT=str(port)))
        up = cls(proc, log)
        deadline = time.monotonic() + 120
        while "open http://" not in up.output:
            assert proc.poll() is None and time.monotonic() < deadline, up.output
            time.sleep(0.1)
        return up

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def url(self) -> str:
        found = re.search(r"open (http://\S+/)app", self.output)
        assert found, self.output
        return found.group(1)

    @property
    def services(self) -> list[str]:
        found = re.search(r"서비스 / services: (.+)", self.output)
        assert found, self.output
        return found.group(1).split(", ")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=60)


def _running_under(folder: Path) -> list[str]:
    return subprocess.run(["pgrep", "-f", str(folder)], capture_output=True, text=True, check=False).stdout.split()


def _nearby(url: str) -> list[dict]:  # type: ignore[type-arg]
    return _get(url + "api/items/nearby?lat=37.55&lng=126.98&radius_m=50000&limit=50")["items"]


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "readyz", timeout=5) as resp:
            return resp.status == 200
    except OSError:
        return False


def test_billi_up_killed_comes_back_with_the_same_data_and_ports_and_its_nodes_reconnect(tmp_path: Path) -> None:
    data = tmp_path / "billi"
    port = free_port()
    first = Up.start(data, port, "first")
    node = None
    try:
        items = _nearby(first.url)
        assert "+6 people, +4 items" in first.output and len(items) == 4
        database, redis, s3 = first.services
        node = start_node(Config(database_url=database, redis_url=redis, s3_url=s3, data_dir=tmp_path / "node"))
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=10)
        assert _running_under(data), "its services should have outlived it, as after any crash"
        second = Up.start(data, port, "second")
        try:
            assert second.services == first.services  # the same ports: whatever points at them finds them again
            assert second.url == first.url
            assert "+0 people, +0 items" in second.output
            again = _nearby(second.url)
            assert [i["id"] for i in again] == [i["id"] for i in items]  # the same data …
            with urllib.request.urlopen(second.url.rstrip("/") + again[0]["thumbnail"], timeout=10) as photo:
                assert photo.status == 200 and photo.read()  # … photos (S3) included
            deadline = time.monotonic() + 60
            while not _ready(node.url) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _ready(node.url), "a node pointed at the services should work again once they are back"
            assert len(_nearby(node.url)) == 4
        finally:
            second.stop()
        assert second.proc.returncode == 0, second.output
    finally:
        if node is not None:
            node.stop()
        first.stop()
    assert _running_under(data) == []  # the clean exit stopped everything, the adopted leftovers included


def test_billi_up_on_a_taken_gateway_port_opens_on_another_and_says_so(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        up = Up.start(tmp_path / "billi", port, "up")
        try:
            assert f"port {port} is taken" in up.output and f"포트 {port} 사용 중" in up.output
            assert up.url != f"http://127.0.0.1:{port}/" and _ready(up.url)
        finally:
            up.stop()
    assert up.proc.returncode == 0, up.output


async def _root_logs_in(url: str) -> bool:
    db = await Database.connect(url, pool_size=1)
    try:
        return await db.fetchval("SELECT 1") == 1
    finally:
        await db.close()


@pytest.fixture
def failing_install_db(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "mariadb-install-db"
    script.write_text(FAILING_INSTALL_DB)
    script.chmod(0o755)
    return bin_dir


def test_a_failed_first_database_initialisation_leaves_nothing_and_the_next_start_works(
        tmp_path: Path, failing_install_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "services"
    with monkeypatch.context() as m:
        m.setenv("PATH", f"{failing_install_db}{os.pathsep}{os.environ['PATH']}")
        with pytest.raises(ServiceError, match="mariadb-install-db failed"):
            LocalServices(root).start(redis=False, s3=False)
    assert not [p for p in root.iterdir() if p.name.startswith("mariadb") and p.is_dir()]
    services = LocalServices(root)
    try:
        assert asyncio.run(_root_logs_in(services.start(redis=False, s3=False)["database_url"]))
    finally:
        services.stop()


def test_a_database_folder_from_an_older_run_is_kept_if_it_worked_and_moved_aside_if_half_made(
        tmp_path: Path) -> None:
    worked, half = LocalServices(tmp_path / "worked"), tmp_path / "half"
    try:
        url = worked.start(redis=False, s3=False)["database_url"]
        assert asyncio.run(_root_logs_in(url))  # (which creates its database)
    finally:
        worked.stop()
    (worked.root / "mariadb" / "billi-initialised").unlink()  # as an older billi left it
    (half / "mariadb" / "mysql").mkdir(parents=True)  # as an older failed initialisation left it
    (half / "mariadb" / "mysql" / "global_priv.MAD").write_text("half")
    for root in (worked.root, half):
        services = LocalServices(root)
        try:
            assert asyncio.run(_root_logs_in(services.start(redis=False, s3=False)["database_url"]))
        finally:
            services.stop()
    assert (worked.root / "mariadb" / "billi").is_dir()  # its database is still there
    assert (half / "mariadb.unfinished" / "mysql" / "global_priv.MAD").read_text() == "half"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "120"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_recorded_pid_now_used_by_another_program_is_left_alone(tmp_path: Path,
                                                                  sleeper: subprocess.Popen[bytes]) -> None:
    root = tmp_path / "services"
    root.mkdir()
    run_file = root / "redis.json"
    run_file.write_text(json.dumps({"pid": sleeper.pid, "owner": None, "ports": {}}))  # pids are reused
    services = LocalServices(root)
    try:
        services.start(mariadb=False, s3=False)
        assert json.loads(run_file.read_text())["pid"] not in (None, sleeper.pid)
    finally:
        services.stop()
    assert sleeper.poll() is None  # never signalled


def test_a_remembered_port_taken_by_another_program_is_replaced_and_said(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    def start() -> str:
        services = LocalServices(tmp_path)
        try:
            return services.start(mariadb=False, s3=False)["redis_url"]
        finally:
            services.stop()

    first = start()
    assert start() == first  # remembered across a clean stop too
    port = int(first.rsplit(":", 1)[1].split("/")[0])
    with socket.create_server(("127.0.0.1", port)), caplog.at_level(logging.WARNING, "billi.services"):
        moved = start()
    new = int(moved.rsplit(":", 1)[1].split("/")[0])
    assert new != port
    assert f"Redis: 다른 프로그램이 포트 {port} 사용 중이라 포트 {new}에서 열어요 / port {port} is taken; using {new}" \
        in caplog.messages
    assert start() == moved  # and the new one is remembered from then on


def test_a_port_taken_while_the_database_starts_is_replaced_and_the_start_tried_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "services"
    run_file = root / "mariadb.json"  # written the moment mariadbd is spawned, well before it listens
    services = LocalServices(root)
    with ThreadPoolExecutor(1) as pool, caplog.at_level(logging.WARNING, "billi.services"):
        starting = pool.submit(services.start, redis=False, s3=False)
        while not run_file.exists():
            assert not starting.done(), starting.result()
            time.sleep(0.001)
        port = json.loads(run_file.read_text())["ports"]["port"]
        try:
            with socket.create_server(("127.0.0.1", port)):  # another program gets there first
                url = starting.result(timeout=120)["database_url"]
            new = int(url.rsplit(":", 1)[1].split("/")[0])
            assert new != port and asyncio.run(_root_logs_in(url))
        finally:
            services.stop()
    assert "MariaDB: 포트를 여는 사이 다른 프로그램이 먼저 차지해 다시 시도해요 / a port was taken while starting; " \
        "trying again" in caplog.messages
    assert any(f"port {port} is taken; using {new}" in m for m in caplog.messages)


def test_a_gateway_port_taken_between_the_check_and_the_bind_is_replaced_not_a_crash(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from gateway import cli

    port = free_port()  # free when `up` looked …
    real = socket.create_server
    held: list[socket.socket] = []

    def another_program_gets_there_first(address: tuple[str, int], **kw: object) -> socket.socket:
        if address[1] == port and not held:
            held.append(real(("127.0.0.1", port)))  # … and taken the moment before it binds
        return real(address, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(cli.socket, "create_server", another_program_gets_there_first)
    try:
        with caplog.at_level(logging.WARNING, "billi"):
            sock = cli._listen("127.0.0.1", port, "Billi", any_port=True)
        with sock:
            new = sock.getsockname()[1]
            assert held and new != port
            with socket.create_connection(("127.0.0.1", new), timeout=5):
                pass  # it listens there
        assert f"Billi: 다른 프로그램이 포트 {port} 사용 중이라 포트 {new}에서 열어요 / port {port} is taken; " \
            f"using {new}" in caplog.messages
        with pytest.raises(SystemExit, match=f"포트 {port}"):  # a node (`billi serve`) does not move: it says so
            cli._listen("127.0.0.1", port, "Billi", any_port=False)
    finally:
        for s in held:
            s.close()
