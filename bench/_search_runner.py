"""One search load, run in its own process against a given checkout of the code (bench/search.py --baseline).

Run as ``PYTHONPATH=<checkout> python bench/_search_runner.py '<json>'``: imports only ``market`` (of that
checkout), so the same load runs on our code and on another commit's alike. The JSON names the database URL,
the query texts, the users, seconds, think time, radius, the seed and ``feedback`` (false: no second pass); prints one JSON line
``{"latencies": [...ms], "errors": n}``.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections.abc import Callable

from market.categories import Categories
from market.db import Database
from market.search import EmbeddedSearch, SearchQuery, korean

CENTRES = ((37.4979, 127.0276), (36.42, 127.42))  # bench/search.py's dense (70 %) and sparse centres


async def searches(backend: EmbeddedSearch, make: Callable[[random.Random], dict[str, str]], users: int,
                   think_s: float, seed: int, until: float, latencies: list[float] | None) -> int:
    """``users`` people searching until ``until``, each after a random pause (mean ``think_s``); each search's
    milliseconds appended to ``latencies`` (None: not timed). Returns how many searches failed."""
    errors = 0

    async def user(k: int) -> None:
        nonlocal errors
        r = random.Random(seed * 1000 + k)
        await asyncio.sleep(r.uniform(0, think_s * 2))
        while time.perf_counter() < until:
            q = SearchQuery.parse(make(r))
            t0 = time.perf_counter()
            try:
                await backend.search(q)
            except Exception:
                errors += 1
            if latencies is not None:
                latencies.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(r.uniform(0, think_s * 2))

    await asyncio.gather(*(user(k) for k in range(users)))
    return errors


async def main(spec: dict) -> dict:
    korean.warm_up()
    db = await Database.connect(spec["url"], pool_size=spec["users"] + 2, create=False)
    try:
        extra = {} if spec.get("feedback", True) else {"feedback": False}  # older code has no such switch
        backend = EmbeddedSearch(db, await Categories.load(db), **extra)
        latencies: list[float] = []

        def make(r: random.Random) -> dict[str, str]:
            lat, lng = CENTRES[0] if r.random() < 0.7 else CENTRES[1]
            return {"q": r.choice(spec["queries"]), "lat": str(lat + r.uniform(-0.01, 0.01)),
                    "lng": str(lng + r.uniform(-0.01, 0.01)), "radius_m": str(spec["radius_m"])}

        load = (backend, make, spec["users"], spec["think_s"], spec["seed"])
        await searches(*load, time.perf_counter() + spec["warm_s"], None)  # this process's caches, not timed
        errors = await searches(*load, time.perf_counter() + spec["seconds"], latencies)
        return {"latencies": latencies, "errors": errors}
    finally:
        await db.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
