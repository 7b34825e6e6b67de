"""A request's first event is marked announced in the transaction that stores its lines. When the writer takes the
two people's lines in two batches (a burst: the boundary between them) and one batch fails, the event is not left
marked announced: the scheduler's repeat stores the missing line (the owner's request card and its buttons)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

import market.chat.writer as writer_module
from gateway.keys import MARKET
from market.rentals.kdates import seoul_today
from tests.conftest import sign_up


async def test_an_owner_line_lost_in_its_own_batch_is_still_announced_later(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    market = client.app[MARKET]
    owner, borrower = await sign_up(client, "배치주인"), await sign_up(client, "배치손님")
    item = await owner.new_item()
    start = seoul_today() + timedelta(days=2)

    # The batch boundary between the two lines (as when 499 drafts are queued before them), and the owner's
    # line's batch failing (a lock wait that ran out, a broken connection before COMMIT …).
    monkeypatch.setattr(writer_module, "_MAX_BATCH", 1)
    writer = market.chat.writer
    real = writer._commit_with_retry
    failed: list[int] = []

    async def owner_batch_fails(batch: Any) -> Any:
        if any(d.audience == owner.id and (d.client_msg_id or "").startswith("ev") for d in batch) and not failed:
            failed.append(1)
            raise RuntimeError("this batch's transaction failed")
        return await real(batch)

    monkeypatch.setattr(writer, "_commit_with_retry", owner_batch_fails)
    c, _ = await market.rentals.request(borrower.id, item["id"], start, start + timedelta(days=1))
    monkeypatch.setattr(writer, "_commit_with_retry", real)
    assert failed

    await market.rentals.flush(c.id)  # the scheduler: whatever is left unannounced
    audiences = [r["audience_id"] for r in await market.db.fetchall(
        "SELECT audience_id FROM messages WHERE room_id = %s AND client_msg_id LIKE 'ev%%' ORDER BY seq",
        (c.room_id,))]
    announced = await market.db.fetchval("SELECT announced_at FROM contract_events WHERE contract_id = %s",
                                         (c.id,))
    assert owner.id in audiences, (f"the owner's request card was never stored (event announced_at={announced},"
                                   f" lines stored for {audiences})")
