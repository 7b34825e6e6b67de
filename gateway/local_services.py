"""Starts our own MariaDB, Redis and S3 (SeaweedFS) as child processes on loopback ports it remembers.

Used by ``billi up``, the test setup and the benchmarks when no service URL is configured. Data lives under one
folder, beside a run file per service (its pid and ports), so a start after a crash finds what was left running and
opens on the same ports again. Nothing listens beyond 127.0.0.1. It never touches a configured service, nor a
process whose command line does not name its own data folder.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("billi.services")

BIND_ATTEMPTS = 3  # a port taken between our check and the service's bind: try again on another, twice
INIT_MARKER = "billi-initialised"  # written into a MariaDB data folder once mariadb-install-db succeeded
SYSTEM_SCHEMAS = frozenset({"mysql", "performance_schema", "sys"})
# What each service writes when a port it was given is taken at the moment it tries to listen.
_BIND_FAILED = re.compile(r"address already in use|port allocation failed", re.IGNORECASE)


class ServiceError(RuntimeError):
    """A local service could not be started."""


class _PortTaken(ServiceError):
    """A service exited because another program took one of its ports before it could listen."""


@dataclass(frozen=True, slots=True)
class _Kind:
    """One kind of service: how people call it, how its command line starts, and which ports it needs."""

    name: str  # its folder and run file
    label: str  # for people
    binary: str  # the program, as the first word of its command line
    ports: tuple[str, ...]  # the roles of its ports; the first is where it answers
    with_grpc: bool = False  # each port also needs port + 10000 (SeaweedFS's gRPC)
    stop_signal: signal.Signals = signal.SIGTERM


MARIADB = _Kind("mariadb", "MariaDB", "mariadbd", ("port",))
REDIS = _Kind("redis", "Redis", "redis-server", ("port",))
# SeaweedFS at once: its SIGTERM takes ~20 s, and nothing it holds needs a goodbye.
S3 = _Kind("s3", "SeaweedFS", "weed", ("s3", "master", "volume", "filer", "admin"), with_grpc=True,
           stop_signal=signal.SIGKILL)


@dataclass(frozen=True, slots=True)
class RunFile:
    """What a service's run file remembers: the process serving (if any), the billi that started it, its ports."""

    pid: int | None = None
    owner: int | None = None
    ports: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> RunFile:
        try:
            data = json.loads(path.read_text())
            return cls(pid=data.get("pid"), owner=data.get("owner"), ports=dict(data.get("ports", {})))
        except (OSError, ValueError, AttributeError, TypeError):  # none yet, or unreadable: nothing to go by
            return cls()

    def save(self, path: Path) -> None:
        """Written whole or not at all: a crash while writing must not lose the ports."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"pid": self.pid, "owner": self.owner, "ports": self.ports}))
        os.replace(tmp, path)


# -- ports -----------------------------------------------------------------------------------------------------
def _port_free(port: int) -> bool:
    """Whether a server could listen on ``port`` now. Servers set SO_REUSEADDR, so we do too: a port whose last
    connections linger in TIME_WAIT after a crash is free for them."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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


def _footprint(port: int, with_grpc: bool) -> set[int]:
    return {port, port + 10000} if with_grpc else {port}


def _soon(check: Callable[[], bool], within_s: float = 5.0) -> bool:
    """``check()`` now, or within a few seconds: the sockets of a service just stopped (or killed with the run
    before) can take a moment to go, and its port should not be given up for that."""
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _choose_ports(kind: _Kind, remembered: dict[str, int]) -> dict[str, int]:
    """The remembered ports where they are still free, so whatever was pointed at this service finds it again;
    a taken one is replaced by a free one, and said."""
    chosen: dict[str, int] = {}
    used: set[int] = set()

    def usable(port: int) -> bool:
        wanted = _footprint(port, kind.with_grpc)
        return not wanted & used and all(_port_free(p) for p in wanted)

    for role in kind.ports:
        old = remembered.get(role)
        if old and _soon(lambda old=old: usable(old)):
            port = old
        else:
            port = free_port(with_grpc=kind.with_grpc)
            while _footprint(port, kind.with_grpc) & used:
                port = free_port(with_grpc=kind.with_grpc)
            if old:
                what = kind.label if len(kind.ports) == 1 else f"{kind.label} {role}"
                log.warning("%s: 다른 프로그램이 포트 %d 사용 중이라 포트 %d에서 열어요 / port %d is taken; using %d",
                            what, old, port, old, port)
        chosen[role] = port
        used |= _footprint(port, kind.with_grpc)
    return chosen


# -- processes -------------------------------------------------------------------------------------------------
def _command_line(pid: int) -> list[str]:
    """The command line of a process; empty when it is gone (or exiting: a zombie has none)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _is_ours(pid: int, kind: _Kind, directory: Path) -> bool:
    """Whether ``pid`` is still that service on that folder: pids are reused, so a pid alone proves nothing."""
    args = _command_line(pid)
    where = str(directory)
    return bool(args) and Path(args[0]).name == kind.binary and any(
        a == where or a.endswith("=" + where) for a in args[1:])


def _stat(path: str) -> list[str]:
    """The fields of a /proc …/stat file after "pid (name)": state, ppid, …; empty when there is no such process."""
    try:
        return Path(path).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _alive(pid: int) -> bool:
    """Whether any thread of ``pid`` still runs. A dying process loses its command line, and its main thread
    turns zombie (Z), while other threads still hold its sockets: only when all are gone are its ports free."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    return any((stat := _stat(f"/proc/{pid}/task/{t}/stat")) and stat[0] not in ("Z", "X") for t in threads)


def _parent(pid: int) -> int | None:
    stat = _stat(f"/proc/{pid}/stat")
    return int(stat[1]) if stat else None


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        if os.getpgid(pid) == pid:  # our services lead their own process group
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _stop_process(pid: int, sig: signal.Signals) -> None:
    """Stop a service this run did not start (there is no Popen to wait on): signal it, then watch it go."""
    _signal(pid, sig)
    if _gone_within(pid, 30):
        return
    _signal(pid, signal.SIGKILL)
    if not _gone_within(pid, 10):
        raise ServiceError(f"pid {pid} did not stop")


def _pid_in(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` itself listens on ``port`` — not merely "something answers there", which another
    program that took the port would do too."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                sockets.add(f"socket:[{cols[9]}]")
    if not sockets:
        return False
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in sockets:
                return True
        except OSError:
            continue
    return False


def _log_since(log_file: Path, offset: int) -> str:
    """What a service wrote to its log during this start (the file keeps every earlier run too)."""
    try:
        with open(log_file, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _wait_until_listening(proc: subprocess.Popen[bytes], port: int, kind: _Kind, timeout: float, log_file: Path,
                          offset: int) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            said = _log_since(log_file, offset)
            error = _PortTaken if _BIND_FAILED.search(said) else ServiceError
            raise error(f"{kind.label} exited with code {proc.returncode}:\n{said[-2000:]}")
        if _listens(proc.pid, port):
            return
        time.sleep(0.05)
    raise ServiceError(f"{kind.label} did not answer on port {port} within {timeout:.0f}s")


def _binary(name: str, *extra_dirs: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for d in (os.path.dirname(sys.executable), *extra_dirs):
        candidate = Path(d) / name
        if candidate.exists():
            return str(candidate)
    raise ServiceError(f"'{name}' is not installed; run ./dev up (or ./dev test) once to install it")


# -- MariaDB's data folder -------------------------------------------------------------------------------------
def _holds_a_database(datadir: Path) -> bool:
    """Whether someone's database lives here — proof that an older initialisation worked (root could log in)."""
    return any((d / "db.opt").exists() for d in datadir.iterdir() if d.is_dir() and d.name not in SYSTEM_SCHEMAS)


def _initialise_mariadb(datadir: Path, as_root: list[str]) -> None:
    """Make the data folder once. mariadb-install-db works in a sibling folder that is renamed into place only when
    it succeeded: a failed first run used to leave a folder that then failed forever with "Access denied"."""
    if (datadir / INIT_MARKER).exists():
        return
    if datadir.exists():  # made before the marker existed, or half made by an older failed run
        if _holds_a_database(datadir):
            (datadir / INIT_MARKER).touch()
            return
        aside = datadir.with_name(datadir.name + ".unfinished")
        shutil.rmtree(aside, ignore_errors=True)
        datadir.rename(aside)
        log.warning("MariaDB: 초기화가 끝나지 않은 데이터 폴더를 옮겨 두고(%s) 새로 만들어요 / an unfinished "
                    "data folder was moved to %s; making a new one", aside, aside)
    work = datadir.with_name(datadir.name + ".init")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    res = subprocess.run(
        [_binary("mariadb-install-db", "/usr/bin", "/usr/sbin"), "--no-defaults", f"--datadir={work}", *as_root,
         "--auth-root-authentication-method=normal", "--skip-test-db"],
        capture_output=True, check=False,
    )
    if res.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        raise ServiceError("mariadb-install-db failed: " + res.stderr.decode(errors="replace")[-1500:])
    (work / INIT_MARKER).touch()
    work.rename(datadir)


@dataclass
class LocalServices:
    """A supervisor for the services Billi needs, each started only if asked for."""

    root: Path
    procs: list[tuple[_Kind, subprocess.Popen[bytes]]] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()  # a leftover is recognised by the exact folder on its command line

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

    def _run_file(self, kind: _Kind) -> Path:
        return self.root / f"{kind.name}.json"

    def _clear_leftovers(self, kind: _Kind, directory: Path, *pid_files: Path) -> dict[str, int]:
        """Stop what a crashed run left serving this folder; returns the ports it remembered. A recorded pid that
        now belongs to another program is left alone; one still the child of a running billi is refused."""
        run = RunFile.load(self._run_file(kind))
        pids = {run.pid, *(_pid_in(p) for p in pid_files)}
        for pid in sorted(p for p in pids if p):
            if not _is_ours(pid, kind, directory):
                if pid == run.pid and _alive(pid):
                    log.info("%s: 기록된 pid %d 자리엔 이제 다른 프로그램이 있어 그대로 둬요 / pid %d now belongs to "
                             "another program; left alone", kind.label, pid, pid)
                continue
            if run.owner is not None and _parent(pid) == run.owner:
                raise ServiceError(f"{kind.label}: 실행 중인 billi(pid {run.owner})가 이 폴더를 쓰고 있어요 — "
                                   f"먼저 멈춰 주세요 / a running billi (pid {run.owner}) is using {directory}; "
                                   "stop it first")
            log.warning("%s: 지난 실행이 남긴 프로세스(pid %d)를 멈추고 다시 열어요 / stopping what an earlier run "
                        "left running (pid %d)", kind.label, pid, pid)
            _stop_process(pid, kind.stop_signal)
        return run.ports

    def _launch(self, kind: _Kind, remembered: dict[str, int], command: Callable[[dict[str, int]], list[str]],
                log_file: Path, timeout: float, *, output: Path | None = None,
                env: dict[str, str] | None = None) -> dict[str, int]:
        """Start one service on its remembered ports (or free ones), recording it before waiting, so even a crash
        during start-up leaves a run file to find it by. A port taken at bind time means another try."""
        ports = _choose_ports(kind, remembered)
        attempt = 1
        while True:
            offset = log_file.stat().st_size if log_file.exists() else 0
            with open(output or os.devnull, "ab") as out:
                proc = subprocess.Popen(command(ports), stdout=out, stderr=out, env=env, start_new_session=True)
            self.procs.append((kind, proc))
            RunFile(pid=proc.pid, owner=os.getpid(), ports=ports).save(self._run_file(kind))
            try:
                _wait_until_listening(proc, ports[kind.ports[0]], kind, timeout, log_file, offset)
                return ports
            except _PortTaken:
                self.procs.remove((kind, proc))
                if attempt == BIND_ATTEMPTS:
                    raise
                log.warning("%s: 포트를 여는 사이 다른 프로그램이 먼저 차지해 다시 시도해요 / a port was taken while "
                            "starting; trying again", kind.label)
                ports = _choose_ports(kind, ports)
                attempt += 1

    # -- MariaDB -----------------------------------------------------------------------------------
    def _start_mariadb(self) -> str:
        datadir = self.root / "mariadb"
        as_root = ["--user=root"] if os.geteuid() == 0 else []
        remembered = self._clear_leftovers(MARIADB, datadir, datadir / "mariadbd.pid")  # (older runs: its own)
        _initialise_mariadb(datadir, as_root)
        err = datadir / "error.log"
        (datadir / "mariadbd.pid").unlink(missing_ok=True)

        def command(ports: dict[str, int]) -> list[str]:
            return [
                _binary("mariadbd", "/usr/sbin"), "--no-defaults", f"--datadir={datadir}",
                f"--socket={datadir / 'mariadbd.sock'}", f"--port={ports['port']}", "--bind-address=127.0.0.1",
                *as_root, f"--pid-file={datadir / 'mariadbd.pid'}", f"--log-error={err}",
                "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
                "--skip-log-bin", "--innodb-buffer-pool-size=1G", "--max-connections=500",
                "--innodb-flush-log-at-trx-commit=2", "--local-infile=1",
                # Keyword search completes listings by primary-key lookups into the postings; the adaptive hash
                # index (off by default since MariaDB 10.5) makes those ~15% cheaper.
                "--innodb-adaptive-hash-index=ON",
            ]

        port = self._launch(MARIADB, remembered, command, err, 60)["port"]
        log.info("MariaDB listening on 127.0.0.1:%d (data in %s)", port, datadir)
        return f"mysql://root@127.0.0.1:{port}/billi"

    # -- Redis -------------------------------------------------------------------------------------
    def _start_redis(self) -> str:
        d = self.root / "redis"
        remembered = self._clear_leftovers(REDIS, d)
        d.mkdir(parents=True, exist_ok=True)
        logfile = d / "redis.log"

        def command(ports: dict[str, int]) -> list[str]:
            # AOF: button tokens, conversation flows and the session cache survive a restart (sessions themselves
            # live in MariaDB). No process title: its command line must keep naming this folder to be found again.
            return [_binary("redis-server", "/usr/bin"), "--port", str(ports["port"]), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--daemonize", "no",
                    "--set-proc-title", "no", "--dir", str(d), "--logfile", str(logfile)]

        port = self._launch(REDIS, remembered, command, logfile, 30)["port"]
        log.info("Redis listening on 127.0.0.1:%d", port)
        return f"redis://127.0.0.1:{port}/0"

    # -- S3 (SeaweedFS) ----------------------------------------------------------------------------
    def _start_s3(self) -> str:
        d = self.root / "s3"
        remembered = self._clear_leftovers(S3, d)
        (d / "log").mkdir(parents=True, exist_ok=True)
        (d / "tmp").mkdir(parents=True, exist_ok=True)

        def command(ports: dict[str, int]) -> list[str]:
            return [
                _binary("weed"), f"-logdir={d / 'log'}", "mini", f"-dir={d}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false",
                "-master.telemetry=false", f"-master.port={ports['master']}", f"-volume.port={ports['volume']}",
                f"-filer.port={ports['filer']}", f"-s3.port={ports['s3']}", f"-admin.port={ports['admin']}",
            ]

        env = dict(os.environ, TMPDIR=str(d / "tmp"))  # its gRPC socket files go here, not /tmp
        logfile = d / "log" / "weed.out"
        s3 = self._launch(S3, remembered, command, logfile, 60, output=logfile, env=env)["s3"]
        log.info("S3 (SeaweedFS) listening on 127.0.0.1:%d", s3)
        return f"http://127.0.0.1:{s3}"

    def stop(self) -> None:
        """Stop every child (MariaDB and Redis cleanly, SeaweedFS at once); their run files keep only the ports."""
        for kind, proc in reversed(self.procs):
            if proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, kind.stop_signal)
            except ProcessLookupError:
                continue
        for kind, proc in reversed(self.procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            run_file = self._run_file(kind)
            RunFile(ports=RunFile.load(run_file).ports).save(run_file)
        self.procs.clear()

    def __enter__(self) -> LocalServices:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
