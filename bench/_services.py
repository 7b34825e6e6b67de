"""Where a benchmark finds its database: ``BILLI_DATABASE_URL`` if set, else a local MariaDB kept under
``.billi/bench`` so a second run can reuse data it already loaded."""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

from gateway.local_services import LocalServices
from market.config import Config
from market.db import DatabaseTarget


@contextmanager
def bench_database(name: str) -> Iterator[str]:
    config = Config.from_env()
    services = LocalServices(Path(config.data_dir) / "bench")
    try:
        url = config.database_url or services.start(redis=False, s3=False)["database_url"]
        t = DatabaseTarget.parse(url).with_database(name)
        yield f"mysql://{t.user}:{t.password}@{t.host}:{t.port}/{t.database}"
    finally:
        services.stop()
