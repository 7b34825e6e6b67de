"""MariaDB faults with a server of the test's own (never the shared one): a statement past its limit, a server that
stops answering, and a restart — a person hears "try again shortly" instead of waiting forever, and the first
requests after the server returns succeed."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.local_services import free_port
from market.config import Config
from market.db import Database, DatabaseUnavailable, Tail, unavailable
from market.service import Market
from tests.conftest import Chatter
from tests.e2e.nodes import start_node
from tests.e2e.test_two_nodes import _person


def _exe(name: str) -> str:
    for found in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if found and Path(found).exists():
            return found
    raise RuntimeError(f"{name} is not installed")


class OwnMariaDB:
    """A MariaDB on a port of its own that can be stopped, frozen and started again on the same port."""

    def __init__(self, root: Path) -> None:
        self.datadir, self.port = root / "mariadb", free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        as_root = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run([_exe("mariadb-install-db"), "--no-defaults", f"--datadir={self.datadir}", *as_root,
                        "--auth-root-authentication-method=normal", "--skip-test-db"], check=True,
                       capture_output=True)
        self._cmd = [_exe("mariadbd"), "--no-defaults", f"--datadir={self.datadir}", *as_root,
                     f"--socket={self.datadir / 'mariadbd.sock'}", f"--port={self.port}", "--bind-address=127.0.0.1",
                     f"--pid-file={self.datadir / 'mariadbd.pid'}", f"--log-error={self.datadir / 'error.log'}",
                     "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci", "--skip-log-bin",
                     "--innodb-buffer-pool-size=64M", "--innodb-flush-log-at-trx-commit=2"]

    @property
    def url(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/billi"

    def start(self) -> None:
        self.proc = subprocess.Popen(self._cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.datadir / "error.log").read_text(errors="replace")[-1500:]
            try:
                import socket
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the test's MariaDB did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)

    def signal(self, sig: int) -> None:
        """Send ``sig``; SIGSTOP returns once every thread of the server has stopped."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        if sig == signal.SIGSTOP:
            tasks = Path(f"/proc/{self.proc.pid}/task")
            for _ in range(100):
                states = [(t / "stat").read_text().rsplit(")", 1)[1].split()[0] for t in tasks.iterdir()]
                if all(state in "Tt" for state in states):
                    return
                time.sleep(0.02)
            raise RuntimeError(f"the test's MariaDB did not stop: {states}")


@pytest.fixture(scope="module")
def own_mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnMariaDB]:
    server = OwnMariaDB(tmp_path_factory.mktemp("mariadb"))
    server.start()
    yield server
    if server.proc is not None:
        server.proc.send_signal(signal.SIGCONT)
    server.stop(signal.SIGKILL)


@pytest.fixture
async def limited(own_mariadb: OwnMariaDB) -> AsyncIterator[Database]:
    own_mariadb.signal(signal.SIGCONT)
    db = await Database.connect(own_mariadb.url, pool_size=3, statement_timeout_s=0.5, connect_timeout_s=1)
    yield db
    own_mariadb.signal(signal.SIGCONT)
    await db.close()


async def test_a_statement_past_its_limit_is_stopped_by_the_server_and_the_pool_goes_on(limited: Database) -> None:
    with pytest.raises(DatabaseUnavailable) as stopped:
        await limited.fetchval("SELECT SLEEP(5)")
    assert stopped.value.code == "db.unavailable" and not stopped.value.lost
    assert await limited.fetchval("SELECT 1") == 1


async def test_a_lock_held_elsewhere_is_waited_for_no_longer_than_the_limit(limited: Database,
                                                                            own_mariadb: OwnMariaDB) -> None:
    await limited.execute("CREATE TABLE IF NOT EXISTS held (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
    await limited.execute("INSERT IGNORE INTO held VALUES (1, 0)")
    holder = await Database.connect(own_mariadb.url, pool_size=1)  # no limits: it keeps the lock
    try:
        async with holder.transaction() as cur:
            await cur.execute("SELECT v FROM held WHERE id = 1 FOR UPDATE")
            with pytest.raises(Exception) as waited:
                await limited.execute("UPDATE held SET v = v + 1 WHERE id = 1")
            assert unavailable(waited.value) is not None  # heard as "try again shortly", not as a bug
    finally:
        await holder.close()
    assert await limited.execute("UPDATE held SET v = v + 1 WHERE id = 1") == 1


async def test_a_free_but_dead_connection_then_a_silent_server_is_waited_for_no_longer_than_the_limit(
        own_mariadb: OwnMariaDB) -> None:
    """A pooled connection counted free may be dead (the server restarted): taking it makes a new one, whose
    handshake a server that accepts but never greets would hold forever — the deadline covers taking it too."""
    db = await Database.connect(own_mariadb.url, pool_size=3, statement_timeout_s=0.5, connect_timeout_s=1)
    try:
        assert await db.fetchval("SELECT 1") == 1
        own_mariadb.stop()
        own_mariadb.start()  # the pooled connection is at EOF now, still counted free
        await asyncio.sleep(0.3)
        own_mariadb.signal(signal.SIGSTOP)
        try:
            with pytest.raises(DatabaseUnavailable):
                await asyncio.wait_for(db.fetchval("SELECT 2"), 15)  # (15 s: the test's own bound, not the code's)
        finally:
            own_mariadb.signal(signal.SIGCONT)
    finally:
        db._pool.terminate()


async def test_begin_with_a_first_statement_and_commit_after_the_last_make_one_transaction(
        limited: Database, own_mariadb: OwnMariaDB) -> None:
    """The chat's group commit sends BEGIN with its first statement and COMMIT with its last: still one
    transaction — all of it or nothing — and a connection whose first statement failed is never pooled inside it."""
    await limited.execute("CREATE TABLE IF NOT EXISTS pair (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
    await limited.execute("REPLACE INTO pair VALUES (1, 0), (2, 0), (3, 0)")
    async with limited.transaction(first=("SELECT id, v FROM pair WHERE id IN (%s, %s) ORDER BY id FOR UPDATE",
                                          (1, 2))) as cur:
        assert [(r["id"], r["v"]) for r in await cur.fetchall()] == [(1, 0), (2, 0)]
        await cur.commit_after("UPDATE pair SET v = 1 WHERE id = %s; UPDATE pair SET v = 2 WHERE id = %s", (1, 2))
    other = await Database.connect(own_mariadb.url, pool_size=1)
    try:
        values = "SELECT GROUP_CONCAT(v ORDER BY id) FROM pair"
        assert await other.fetchval(values) == "1,2,0"
        # a statement after the first that fails stops the rest, COMMIT included: nothing of it stays
        with pytest.raises(Exception, match="Duplicate"):
            async with limited.transaction(first=("SELECT v FROM pair WHERE id = %s FOR UPDATE", (1,))) as cur:
                await cur.commit_after("UPDATE pair SET v = 5 WHERE id = 1; INSERT INTO pair VALUES (2, 9)")
        assert await other.fetchval(values) == "1,2,0"
        # a first statement that fails after BEGIN leaves no transaction open on the pool's one connection: the
        # next autocommit write is committed at once (not left inside a transaction nobody ends)
        alone = await Database.connect(own_mariadb.url, pool_size=1)
        try:
            with pytest.raises(Exception, match="doesn't exist"):
                async with alone.transaction(first=("SELECT * FROM no_such_table", ())):
                    pass
            assert await alone.execute("UPDATE pair SET v = 7 WHERE id = 3") == 1
            assert await other.fetchval(values) == "1,2,7"
        finally:
            await alone.close()
    finally:
        await other.close()


async def test_a_batch_sent_with_begin_is_read_statement_by_statement_and_a_tail_tells_each_of_its_writes(
        limited: Database) -> None:
    """A rental request sends BEGIN with its locks and its checks (read one after another), and its writes with
    COMMIT (``Tail``), an inserted id passed on by a user variable: each write's affected rows and inserted id come
    back in order; a statement of the first batch that fails raises where it is read, and nothing stays."""
    await limited.execute("CREATE TABLE IF NOT EXISTS parent (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB")
    await limited.execute("CREATE TABLE IF NOT EXISTS child (id INT AUTO_INCREMENT PRIMARY KEY, parent INT,"
                          " note VARCHAR(20), UNIQUE KEY (note)) ENGINE=InnoDB")
    await limited.execute("DELETE FROM child")
    async with limited.transaction(first=("SELECT 1 AS a; SELECT 2 AS b; SELECT COUNT(*) AS n FROM child",
                                          ())) as cur:
        assert await cur.fetchall() == [{"a": 1}]
        assert await cur.next_rows() == [{"b": 2}]
        assert await cur.next_rows() == [{"n": 0}]
        tail = Tail()
        made = tail.add("INSERT INTO parent (v) VALUES (%s)", 7)
        tail.add("SET @parent = LAST_INSERT_ID()")
        first = tail.add("INSERT INTO child (parent, note) SELECT @parent, %s FROM DUAL ON DUPLICATE KEY UPDATE"
                         " id = id", "x;'")
        again = tail.add("INSERT INTO child (parent, note) SELECT @parent, %s FROM DUAL ON DUPLICATE KEY UPDATE"
                         " id = id", "x;'")
        rows = tail.add("SELECT note FROM child WHERE parent = @parent")
        done = await cur.commit_after(tail.sql, tuple(tail.args))
    assert len(done) == 5 and done[first][0] == 1 and done[again][0] == 0 and done[rows][2] == [{"note": "x;'"}]
    parent = done[made][1]
    assert await limited.fetchall("SELECT parent, note FROM child") == [{"parent": parent, "note": "x;'"}]
    with pytest.raises(Exception, match="doesn't exist"):
        async with limited.transaction(first=("INSERT INTO child (parent, note) VALUES (0, 'y'); SELECT * FROM"
                                              " no_such_table", ())) as cur:
            await cur.next_rows()
    assert await limited.fetchval("SELECT COUNT(*) FROM child") == 1


async def test_a_read_after_the_commit_sees_what_is_committed_and_its_failure_leaves_the_commit_standing(
        limited: Database, own_mariadb: OwnMariaDB) -> None:
    """A rental request reads the owner's unread count after its COMMIT, in the same round trip (``read_after``):
    it sees what others committed while the transaction ran (which a read inside it would not: its snapshot is
    older), and if it fails, the commit before it still stands and the connection goes on."""
    await limited.execute("CREATE TABLE IF NOT EXISTS seen (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
    await limited.execute("REPLACE INTO seen VALUES (1, 0), (2, 0), (3, 0)")
    other = await Database.connect(own_mariadb.url, pool_size=1)
    try:
        async with limited.transaction(first=("SELECT v FROM seen WHERE id = %s", (3,))) as cur:
            assert await cur.fetchall() == [{"v": 0}]  # (the transaction's snapshot is taken here)
            await other.execute("UPDATE seen SET v = 42 WHERE id = 3")  # committed meanwhile, elsewhere
            tail = Tail()
            wrote = tail.add("UPDATE seen SET v = %s WHERE id = %s", 1, 1)
            inside = tail.add("SELECT v FROM seen WHERE id = 3")
            after = tail.read_after("SELECT v FROM seen WHERE id = %s", 3)
            mine = tail.read_after("SELECT v FROM seen WHERE id = %s", 1)
            done, reads = await tail.commit(cur)
        assert done[wrote][0] == 1 and done[inside][2] == [{"v": 0}]
        assert reads[after] == [{"v": 42}] and reads[mine] == [{"v": 1}]
        async with limited.transaction() as cur:
            tail = Tail()
            tail.add("UPDATE seen SET v = %s WHERE id = %s", 2, 2)
            broken = tail.read_after("SELECT v FROM no_such_table WHERE id = %s", 2)
            later = tail.read_after("SELECT v FROM seen WHERE id = %s", 2)
            done, reads = await tail.commit(cur)
        assert done == [(1, 0, [])] and reads[broken] is None and reads[later] is None
        assert await other.fetchval("SELECT GROUP_CONCAT(v ORDER BY id) FROM seen") == "1,2,42"
        assert [await limited.fetchval("SELECT %s", (n,)) for n in range(4)] == [0, 1, 2, 3]  # (every connection)
        # a statement before the COMMIT that fails still raises, and nothing of the transaction stays
        with pytest.raises(Exception, match="doesn't exist"):
            async with limited.transaction() as cur:
                tail = Tail()
                tail.add("UPDATE seen SET v = 9 WHERE id = 1")
                tail.add("SELECT * FROM no_such_table")
                tail.read_after("SELECT 1")
                await tail.commit(cur)
        assert await other.fetchval("SELECT GROUP_CONCAT(v ORDER BY id) FROM seen") == "1,2,42"
    finally:
        await other.close()


async def test_the_reads_after_a_tails_commit_share_one_deadline_and_cut_off_they_leave_the_commit(
        limited: Database, own_mariadb: OwnMariaDB) -> None:
    """The reads sent after a tail's COMMIT are awaited together for three statement deadlines (0.6 s here), not
    each for as long: those that together outlast it are cut off (None), the commit stands, and the broken
    connection is not pooled again."""
    await limited.execute("CREATE TABLE IF NOT EXISTS slow (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
    await limited.execute("REPLACE INTO slow VALUES (1, 0)")
    other = await Database.connect(own_mariadb.url, pool_size=1)
    try:
        async with limited.transaction() as cur:
            cur.deadline_s = 0.2
            tail = Tail()
            tail.add("UPDATE slow SET v = %s WHERE id = %s", 7, 1)
            # (each read alone is within the server's 0.5 s limit and the 0.6 s; the four together are not)
            slow = [tail.read_after("SELECT SLEEP(0.45) AS s, %s AS n", n) for n in range(4)]
            done, reads = await tail.commit(cur)
        assert done == [(1, 0, [])] and reads[slow[0]] == [{"s": 0, "n": 0}] and reads[slow[-1]] is None
        assert await other.fetchval("SELECT v FROM slow WHERE id = 1") == 7  # committed
        assert [await limited.fetchval("SELECT %s", (n,)) for n in range(4)] == [0, 1, 2, 3]
    finally:
        await other.close()


async def test_a_server_that_stops_answering_gets_a_clear_answer_and_its_connection_is_dropped(
        limited: Database, own_mariadb: OwnMariaDB) -> None:
    assert await limited.fetchval("SELECT 1") == 1
    own_mariadb.signal(signal.SIGSTOP)  # alive but silent: the worst kind of down
    try:
        with pytest.raises(DatabaseUnavailable):
            await asyncio.wait_for(limited.fetchval("SELECT 2"), 30)  # (the test's own bound is generous)
        with pytest.raises(DatabaseUnavailable):
            async with limited.transaction() as cur:
                await asyncio.wait_for(cur.execute("SELECT 3"), 30)
    finally:
        own_mariadb.signal(signal.SIGCONT)
    # the connections cut off mid-statement were thrown away: the next work gets a clean one
    assert await limited.fetchval("SELECT 4") == 4
    async with limited.transaction() as cur:
        await cur.execute("SELECT 5 AS five")
        assert (await cur.fetchone())["five"] == 5


async def test_a_statement_running_when_the_server_shuts_down_is_heard_as_unavailable(
        own_mariadb: OwnMariaDB) -> None:
    """The server kills what is running as it stops (the connection lost, or 1927): "try again shortly", not an error,
    and the next work after it is back goes through."""
    db = await Database.connect(own_mariadb.url, pool_size=2, statement_timeout_s=30, connect_timeout_s=1)
    try:
        running = asyncio.create_task(db.fetchval("SELECT SLEEP(20)"))
        await asyncio.sleep(0.5)
        own_mariadb.stop()
        with pytest.raises(DatabaseUnavailable) as heard:
            await asyncio.wait_for(running, 30)
        assert heard.value.lost
        own_mariadb.start()
        assert await db.fetchval("SELECT 7") == 7
    finally:
        if own_mariadb.proc is None or own_mariadb.proc.poll() is not None:
            own_mariadb.start()
        await db.close()


async def test_after_a_restart_the_first_requests_succeed(config: Config, own_mariadb: OwnMariaDB) -> None:
    own_mariadb.signal(signal.SIGCONT)
    mine = config.replace(database_url=own_mariadb.url)
    async with Market.open(mine) as market:
        owner = await _person(market, "db-owner@example.com", "주인")
        borrower = await _person(market, "db-borrower@example.com", "손님")
        item = await market.items.create(owner.id, {
            "title": "캠핑 의자", "description": "튼튼해요", "category_id": 7, "price_per_day": 3000,
            "deposit": 10000, "condition": "상", "lat": 37.4979, "lng": 127.0276})
        room, _ = await market.chat.open_deal_room(item["id"], borrower.id)
    node = start_node(mine, BILLI_DB_POOL_SIZE="4")
    try:
        chatter = await Chatter(borrower, node.url).connect()
        auth = {"Authorization": f"Bearer {borrower.token}"}
        async with httpx.AsyncClient(timeout=30) as http:
            for n in range(4):  # every pooled connection in use once, so each is there to go stale
                await asyncio.gather(*(http.get(node.url + "api/rooms", headers=auth) for _ in range(4)))
                assert (await chatter.call("message", {"room": room.id, "text": f"전 {n}"}))["ok"]
            own_mariadb.stop()
            # while it is away: a clear answer, and a chat client's queue is told when to send again
            away = await chatter.call("message", {"room": room.id, "text": "없는 동안", "client_msg_id": "away"})
            assert not away["ok"] and away["error"]["code"] == "db.unavailable", away
            assert away["error"]["retry_after"] > 0 and "잠시" in away["error"]["message"]
            down = await http.get(node.url + "api/rooms", headers=auth)
            assert down.status_code == 503 and down.json()["error"]["code"] == "db.unavailable", down.text
            assert int(down.headers["Retry-After"]) > 0
            own_mariadb.start()
            # the first of each kind after the restart: a read, a chat send, a log-in (a write)
            rooms = await http.get(node.url + "api/rooms", headers=auth)
            assert rooms.status_code == 200, rooms.text
            sent: dict[str, Any] = await chatter.call("message", {"room": room.id, "text": "다시 왔어요",
                                                                  "client_msg_id": "after-restart"})
            assert sent["ok"], sent
            again = await chatter.call("message", {"room": room.id, "text": "없는 동안", "client_msg_id": "away"})
            assert again["ok"] and not again["duplicate"] and again["message"]["seq"] == sent["message"]["seq"] + 1
            login = await http.post(node.url + "api/auth/login", headers={"Origin": node.url.rstrip("/")},
                                    json={"email": "db-owner@example.com", "password": "rent4you"})
            assert login.status_code == 200, login.text
        await chatter.close()
    finally:
        node.stop()
