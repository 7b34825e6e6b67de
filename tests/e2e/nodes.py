"""Gateway processes for multi-node tests: real ``billi serve`` processes sharing the test services."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass

from gateway.local_services import free_port
from market.config import Config


@dataclass
class Node:
    proc: subprocess.Popen[bytes]
    url: str

    def kill(self) -> None:
        """A crash: no goodbye to anyone."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def start_node(config: Config, port: int | None = None, **extra_env: str) -> Node:
    """A gateway process on ``port`` (a free one by default; the same one again brings a crashed node back)."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLI_")}
    env.update({
        "BILLI_DATABASE_URL": config.database_url or "", "BILLI_REDIS_URL": config.redis_url or "",
        "BILLI_S3_URL": config.s3_url or "", "BILLI_S3_BUCKET": config.s3_bucket, "BILLI_PORT": str(port),
        "BILLI_DATA_DIR": str(config.data_dir), "BILLI_LOG_LEVEL": "WARNING",
        "BILLI_BANK_URL": config.bank_url or "", "BILLI_NAVER_AUTH_URL": config.naver_auth_url or "",
        "BILLI_BANK_TIMEOUT_MS": str(config.bank_timeout_ms),
        "BILLI_SCHEDULER_INTERVAL_MS": str(config.scheduler_interval_ms), **extra_env,
    })
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway node exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "readyz", timeout=2) as resp:
                if resp.status == 200:
                    return Node(proc, url)
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("gateway node did not become ready")
