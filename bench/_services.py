"""Where a benchmark finds its services: the configured URLs if set, else local ones kept under
``.billi/bench`` so a second run can reuse data it already loaded."""

from __future__ import annotations

import os
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


ROOT = Path(__file__).resolve().parents[1]


def gateway_env(config: Config, port: int, **extra: str) -> dict[str, str]:
    """The environment of a `billi serve` process on ``port`` against ``config``'s services (nothing else of ours
    from the caller's environment; the checkout's own code first on the path, whoever runs the bench), plus
    ``extra`` settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLI_")}
    env.update({"BILLI_DATABASE_URL": config.database_url or "", "BILLI_REDIS_URL": config.redis_url or "",
                "BILLI_S3_URL": config.s3_url or "", "BILLI_S3_BUCKET": config.s3_bucket,
                "BILLI_PORT": str(port), "BILLI_LOG_LEVEL": "WARNING",
                "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]), **extra})
    return env
