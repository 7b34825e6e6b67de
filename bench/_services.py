"""Where a benchmark finds its services: the configured URLs if set, else local ones kept under
``.billi/bench`` so a second run can reuse data it already loaded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.local_services import LocalServices
from market.config import Config
from market.db import DatabaseTarget


@contextmanager
def bench_database(name: str) -> Iterator[str]:
    with bench_services(name, redis=False, s3=False) as config:
        assert config.database_url
        yield config.database_url


@contextmanager
def bench_services(database: str, *, redis: bool = True, s3: bool = True) -> Iterator[Config]:
    """A Config whose database is ``database`` on the configured (or a local) MariaDB."""
    config = Config.from_env()
    services = LocalServices(Path(config.data_dir) / "bench")
    try:
        urls = services.start(mariadb=not config.database_url, redis=redis and not config.redis_url,
                              s3=s3 and not config.s3_url)
        config = config.replace(**urls)
        assert config.database_url
        t = DatabaseTarget.parse(config.database_url).with_database(database)
        yield config.replace(database_url=f"mysql://{t.user}:{t.password}@{t.host}:{t.port}/{t.database}",
                             s3_bucket=f"{database.replace('_', '-')}")
    finally:
        services.stop()
