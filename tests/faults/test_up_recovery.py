"""`billi up` always comes back: after a failed first database initialisation, over a pid now used by another
program, and when a port it remembers was taken meanwhile. Every service here is the test's own, under its
temporary folder."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gateway.local_services import LocalServices, ServiceError
from market.db import Database

FAILING_INSTALL_DB = """#!/bin/sh
# mariadb-install-db failing half-way, as it did for a newcomer: system tables begun, no root user
for a in "$@"; do case "$a" in --datadir=*) dir="${a#--datadir=}";; esac; done
mkdir -p "$dir/mysql" && echo half > "$dir/mysql/global_priv.MAD"
echo "ERROR: could not create the root user" >&2
exit 1
"""


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
