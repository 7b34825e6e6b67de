"""The one configuration object, built once from ``BILLI_*`` environment variables.

Nothing else in the project reads ``os.environ``; secrets never appear in ``repr`` or logs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

_SECRET_FIELDS = frozenset({"s3_secret_key", "token_key", "bank_client_secret", "naver_client_secret",
                            "bank_platform_inquiry_token", "metrics_token"})
_DEPLOYMENT_SECRETS = ("token_key",)  # working defaults locally, a forgery kit on a public node


def _mask_url(url: str | None) -> str | None:
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


@dataclass(frozen=True, slots=True)
class Config:
    """Every setting of a Billi process. ``None`` service URLs mean "start our own locally"."""

    database_url: str | None = None
    redis_url: str | None = None
    s3_url: str | None = None
    s3_bucket: str = "billi"
    s3_access_key: str = "billi"
    s3_secret_key: str = field(default="billi-local-secret", repr=False)
    s3_region: str = "us-east-1"
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None
    data_dir: Path = Path(".billi")
    session_ttl_s: int = 14 * 24 * 3600
    session_sweep_interval_ms: int = 60_000  # how often a node hangs up sockets whose session ended unheard
    cookie_secure: bool = False
    upload_read_timeout_s: float = 60.0  # a photo upload's whole body must arrive within this
    max_upload_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 16_000_000  # read from the header: a bigger image is refused before it is decoded
    image_workers: int = 2  # photos decoded at once per process, each in a worker process of its own
    image_queue: int = 2  # uploads that may wait for a worker; more at once are told 503 with Retry-After
    upload_rate_limit: int = 20  # uploads (requests with photos) per person per window; more are told 429
    upload_rate_window_s: int = 60
    max_photos_per_item: int = 10
    # Flood limits (windows opened by a subject's first try; more tries in a window are told 429 with Retry-After). Per-address allowances
    # are wider than per-person ones: a mobile carrier's NAT puts many neighbours behind one address.
    search_rate_limit: int = 60  # searches (keyword or nearby, REST) per person, or per address when logged out
    search_address_rate_limit: int = 300  # searches from one address, by everyone there
    search_rate_window_s: int = 60
    command_rate_limit: int = 30  # bot commands typed in chat (/검색, /주변, /등록, /대여 …) per person
    command_rate_window_s: int = 60
    inquiry_rate_limit: int = 20  # deal rooms one person may open (문의하기, or a first /대여) per window
    inquiry_rate_window_s: int = 3600
    # New inquiries an owner has not yet read, within this long of the first, make one notification ("새 문의 3건")
    inquiry_notice_window_s: int = 600
    signup_rate_limit: int = 20  # sign-ups from one address per window
    signup_rate_window_s: int = 3600
    nearby_default_radius_m: int = 6000
    nearby_max_radius_m: int = 50_000
    # Password guessing: failures allowed before each further try must wait (1 s, then doubling up to
    # login_max_delay_s) — from one address at one account, from one address at any accounts, and at one account
    # from anywhere (then each address that has been failing there waits); each count is forgotten once a window
    # passes without a failure.
    login_max_failures: int = 5
    login_address_max_failures: int = 20
    login_account_max_failures: int = 20
    login_max_delay_s: int = 300
    login_failure_window_s: int = 15 * 60
    # Password-reset mails one address may be sent per window (asked for a known address or not: the same answer)
    password_reset_max_requests: int = 3
    password_reset_window_s: int = 3600
    password_reset_address_max_requests: int = 10  # reset mails asked from one client address per window, any e-mail
    smtp_url: str | None = None  # smtp://[user:password@]host[:port] or smtps://…; unset: billi up runs a mail sink
    mail_from: str = "빌리마켓 <no-reply@billi.local>"
    smtp_require_tls: bool = False  # smtp://: refuse to send a mail unless the server offers STARTTLS
    # Our own reverse proxies (comma-separated addresses or networks): only from them is X-Forwarded-For believed
    trusted_proxies: str = ""
    password_hash_concurrency: int = 2  # argon2 hashes at once per process; as many more may wait, the rest: 503
    db_pool_size: int = 10
    redis_pool_size: int = 64
    chat_rate_limit: int = 20
    report_rate_limit: int = 10  # reports (신고) one person may file per day; more are told 429
    chat_rate_window_s: int = 10
    chat_archive_after_days: int = 30
    chat_archive_interval_s: int = 3600
    chat_archive_segment_size: int = 2000
    socketio_channel: str = "billi-socketio"
    elasticsearch_url: str | None = None
    elasticsearch_index: str = "billi-items"
    search_index_interval_ms: int = 500
    bank_url: str | None = None
    bank_client_id: str = "billi-sandbox-client"
    bank_client_secret: str = field(default="billi-sandbox-secret", repr=False)
    bank_platform_account: str = "1002003004005"
    # The platform account as the bank's transaction list knows it, and a token with the inquiry scope for it
    # (daily reconciliation); the defaults are the sandbox's.
    bank_platform_fintech_use_num: str = "199000000000000000000001"
    bank_platform_inquiry_token: str = field(default="billi-sandbox-platform-inquiry", repr=False)
    bank_timeout_ms: int = 10_000
    # MariaDB: each statement's and lock wait's limit (the server's max_statement_time; 0: none), and a new
    # connection's
    db_statement_timeout_ms: int = 10_000
    db_connect_timeout_ms: int = 5_000
    redis_timeout_ms: int = 3_000  # one Redis command's (and connection's) limit
    # Chat fan-out between gateway nodes: "routed" (a channel per room and person), or "shared" (listens on those
    # and on the one shared channel, publishes on the shared one only): the first step of upgrading one-channel nodes
    fanout: str = "routed"
    ready_check_timeout_ms: int = 2_000  # /readyz: a service not answering by then is reported down
    s3_timeout_ms: int = 10_000  # one S3 read's limit; a call with its retry answers within 2.5× this
    bank_unknown_horizon_h: int = 24  # an unknown transfer still unknown after this goes to an operator
    sandbox_port: int = 8090
    widget_embed_origins: str = ""
    naver_auth_url: str | None = None
    naver_api_url: str | None = None
    naver_client_id: str = "billi-naver-client"
    naver_client_secret: str = field(default="billi-naver-secret", repr=False)
    token_key: str = field(default="billi-local-token-key", repr=False)
    rental_fee_percent: int = 5
    rental_request_ttl_h: int = 24
    rental_payment_window_h: int = 24
    rental_free_cancel_h: int = 24
    rental_late_cancel_percent: int = 50
    rental_claim_window_h: int = 72
    rental_no_show_h: int = 24  # a paid rental nobody handed over this long after its start day began: refunded
    rental_max_days: int = 60
    rental_return_confirm_h: int = 24  # a declared return the owner neither confirms nor objects to: confirmed
    rental_lost_after_days: int = 14  # overdue this many days (no return declared): a 분실 claim for the deposit
    scheduler_interval_ms: int = 15_000
    gc_gen0_threshold: int = 50_000
    log_level: str = "INFO"
    log_json: bool = False
    # /metrics answers "Authorization: Bearer <this>"; unset, only a direct caller on this machine, and only while
    # public_url is unset (a deployment behind a proxy would otherwise show it to everyone the proxy forwards)
    metrics_token: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Read ``BILLI_<FIELD>`` for every field; unknown or empty variables keep the default."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f"BILLI_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.name, f.type, raw)
        return cls(**values)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> Config:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def url(self) -> str:
        """Where a person opens the platform."""
        return self.public_url or f"http://{self.host}:{self.port}/"

    def public_defaults(self) -> list[str]:
        """The secrets a public deployment (``public_url`` or ``cookie_secure`` set) must not keep at their published
        defaults, as their variables' names: the token key seals people's bank tokens and signs known-device
        cookies, and its default is in our source for anyone to read."""
        if not (self.public_url or self.cookie_secure):
            return []
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        return [f"BILLI_{name.upper()}" for name in _DEPLOYMENT_SECRETS if getattr(self, name) == defaults[name]]

    def describe(self) -> dict[str, object]:
        """The settings with secrets masked, fit for a log line."""
        out: dict[str, object] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_FIELDS:
                value = "***"
            elif f.name.endswith("_url"):
                value = _mask_url(value)
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.describe().items())
        return f"Config({inner})"


def _coerce(name: str, type_name: object, raw: str) -> object:
    text = str(type_name)
    try:
        if text == "bool":
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if text == "int":
            return int(raw)
        if text == "float":
            return float(raw)
        if text == "Path":
            return Path(raw)
    except ValueError:
        raise ValueError(f"BILLI_{name.upper()} has an invalid value") from None
    return raw
