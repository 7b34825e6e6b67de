"""``billi reports`` as an operator runs it: the open reports (target, reason, how many reported it, the latest
note), and ``billi reports resolve <id> --note`` closing one."""

from __future__ import annotations

import subprocess

from market.config import Config
from market.service import Market
from tests.e2e.test_cli import BILLI, _env


def _billi(config: Config, *args: str) -> subprocess.CompletedProcess[str]:
    env = _env(BILLI_DATABASE_URL=config.database_url or "", BILLI_REDIS_URL=config.redis_url or "",
               BILLI_S3_URL=config.s3_url or "", BILLI_S3_BUCKET=config.s3_bucket,
               BILLI_DATA_DIR=str(config.data_dir))
    return subprocess.run([*BILLI, "reports", *args], env=env, capture_output=True, text=True, timeout=120)


async def _person(market: Market, nickname: str, email: str) -> int:
    session = await market.accounts.sign_up({"email": email, "nickname": nickname, "password": "rent4you"})
    return int(session.user.id)


async def test_billi_reports_lists_the_queue_and_resolve_closes_a_report(market: Market, config: Config) -> None:
    target = await _person(market, "수상한이웃", "target@example.com")
    first = await _person(market, "민지", "minji@example.com")
    second = await _person(market, "준호", "junho@example.com")
    await market.reports.file(first, {"kind": "person", "id": target, "reason": "fraud", "note": "선입금만 요구해요"})
    await market.reports.file(second, {"kind": "person", "id": target, "reason": "fraud", "note": "연락이 끊겼어요"})

    listed = _billi(config)
    assert listed.returncode == 0, listed.stderr
    lines = [line for line in listed.stdout.splitlines() if line.startswith("#")]
    assert len(lines) == 1, listed.stdout
    assert f"person {target} 수상한이웃" in lines[0] and "사기 의심" in lines[0]
    assert "2명 신고" in lines[0] and "연락이 끊겼어요" in lines[0]
    report_id = lines[0][1:].split()[0]

    done = _billi(config, "resolve", report_id, "--note", "계정 확인 후 경고했어요")
    assert done.returncode == 0, done.stderr
    rows = await market.db.fetchall("SELECT status, resolution_note FROM reports WHERE target_id = %s", (target,))
    assert [(r["status"], r["resolution_note"]) for r in rows] == [("resolved", "계정 확인 후 경고했어요")] * 2
    assert "열린 신고가 없어요" in _billi(config).stdout
    again = _billi(config, "resolve", report_id, "--note", "x")
    assert again.returncode == 2 and again.stderr.strip()
