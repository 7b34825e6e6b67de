"""Starts our own MariaDB, Redis and S3 (SeaweedFS) as child processes on free loopback ports.

Used by ``billi up``, the test setup and the benchmarks when no service URL is configured.
Data lives under one folder; nothing listens beyond 127.0.0.1. It never touches a configured service.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("billi.services")


class ServiceError(RuntimeError):
    """A local service could not be started."""


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, with_grpc: bool = False) -> int:
    """A free loopback port; with ``with_grpc`` also port+10000 is free (SeaweedFS's gRPC offset)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not with_grpc:
            return port
        if port + 10000 < 65535 and _port_free(port + 10000):
            return port
    raise ServiceError("no free loopback port found")


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], name: str, timeout: float, log_file: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
            raise ServiceError(f"{name} exited with code {proc.returncode}:\n{tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise ServiceError(f"{name} did not answer on port {port} within {timeout:.0f}s")


def _binary(name: str, *extra_dirs: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for d in (os.path.dirname(sys.executable), *extra_dirs):
        candidate = Path(d) / name
        if candidate.exists():
            return str(candidate)
    raise ServiceError(f"'{name}' is not installed; run ./dev up (or ./dev test) once to install it")


@dataclass
class LocalServices:
    """A supervisor for the services Billi needs, each started only if asked for."""

    root: Path
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)

    def start(self, *, mariadb: bool = True, redis: bool = True, s3: bool = True) -> dict[str, str]:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            if mariadb:
                self.urls["database_url"] = self._start_mariadb()
            if redis:
                self.urls["redis_url"] = self._start_redis()
            if s3:
                self.urls["s3_url"] = self._start_s3()
        except BaseException:
            self.stop()
            raise
        return dict(self.urls)

    # -- MariaDB -----------------------------------------------------------------------------------
    def _start_mariadb(self) -> str:
        datadir = (self.root / "mariadb").resolve()
        as_root = ["--user=root"] if os.geteuid() == 0 else []
        if not (datadir / "mysql").is_dir():
            datadir.mkdir(parents=True, exist_ok=True)
            install = _binary("mariadb-install-db", "/usr/bin", "/usr/sbin")
            res = subprocess.run(
                [install, "--no-defaults", f"--datadir={datadir}", *as_root, "--auth-root-authentication-method=normal",
                 "--skip-test-db"],
                capture_output=True,
            )
            if res.returncode != 0:
                raise ServiceError("mariadb-install-db failed: " + res.stderr.decode(errors="replace")[-1500:])
        port = free_port()
        err = datadir / "error.log"
        (datadir / "mariadbd.pid").unlink(missing_ok=True)
        cmd = [
            _binary("mariadbd", "/usr/sbin"), "--no-defaults", f"--datadir={datadir}",
            f"--socket={datadir / 'mariadbd.sock'}", f"--port={port}", "--bind-address=127.0.0.1",
            *as_root, f"--pid-file={datadir / 'mariadbd.pid'}", f"--log-error={err}",
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
            "--skip-log-bin", "--innodb-buffer-pool-size=1G", "--max-connections=500",
            "--innodb-flush-log-at-trx-commit=2", "--local-infile=1",
            # Keyword search completes listings by primary-key lookups into the postings; the adaptive hash
            # index (off by default since MariaDB 10.5) makes those ~15% cheaper.
            "--innodb-adaptive-hash-index=ON",
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(("mariadb", proc))
        _wait_for_port(port, proc, "MariaDB", 60, err)
        log.info("MariaDB listening on 127.0.0.1:%d (data in %s)", port, datadir)
        return f"mysql://root@127.0.0.1:{port}/billi"

    # -- Redis -------------------------------------------------------------------------------------
    def _start_redis(self) -> str:
        d = (self.root / "redis").resolve()
        d.mkdir(parents=True, exist_ok=True)
        port = free_port()
        logfile = d / "redis.log"
        # AOF: button tokens, conversation flows and the session cache survive a restart (sessions themselves
        # live in MariaDB)
        cmd = [_binary("redis-server", "/usr/bin"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "yes", "--appendfsync", "everysec", "--daemonize", "no", "--dir", str(d),
               "--logfile", str(logfile)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(("redis", proc))
        _wait_for_port(port, proc, "Redis", 30, logfile)
        log.info("Redis listening on 127.0.0.1:%d", port)
        return f"redis://127.0.0.1:{port}/0"

    # -- S3 (SeaweedFS) ----------------------------------------------------------------------------
    def _start_s3(self) -> str:
        d = (self.root / "s3").resolve()
        (d / "log").mkdir(parents=True, exist_ok=True)
        (d / "tmp").mkdir(parents=True, exist_ok=True)
        ports = [free_port(with_grpc=True) for _ in range(5)]
        while len({*ports, *(p + 10000 for p in ports)}) != 2 * len(ports):
            ports = [free_port(with_grpc=True) for _ in range(5)]
        master, volume, filer, s3, admin = ports
        cmd = [
            _binary("weed"), f"-logdir={d / 'log'}", "mini", f"-dir={d}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false",
            "-master.telemetry=false", f"-master.port={master}", f"-volume.port={volume}",
            f"-filer.port={filer}", f"-s3.port={s3}", f"-admin.port={admin}",
        ]
        env = dict(os.environ, TMPDIR=str(d / "tmp"))  # its gRPC socket files go here, not /tmp
        logfile = d / "log" / "weed.out"
        with open(logfile, "ab") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=out, env=env, start_new_session=True)
        self.procs.append(("s3", proc))
        _wait_for_port(s3, proc, "SeaweedFS S3", 60, logfile)
        log.info("S3 (SeaweedFS) listening on 127.0.0.1:%d", s3)
        return f"http://127.0.0.1:{s3}"

    def stop(self) -> None:
        """Stop every child: MariaDB and Redis cleanly, SeaweedFS at once (its SIGTERM takes ~20 s)."""
        for name, proc in reversed(self.procs):
            if proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGKILL if name == "s3" else signal.SIGTERM)
            except ProcessLookupError:
                continue
        for name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def __enter__(self) -> LocalServices:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
