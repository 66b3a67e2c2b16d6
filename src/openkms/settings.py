"""Settings: read once at start, validated, then passed in (never imported as a global)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openkms.ids import is_valid_region
from openkms.regions import aws_regions

DEFAULT_REGION = "us-east-1"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_DATA_DIR = "./openkms-data"
# The largest legitimate request is a 32 KB key policy or an ImportKeyMaterial call (two 6 KiB blobs in
# base64); 128 KiB leaves room for encryption contexts and is refused before the body is read past it.
DEFAULT_MAX_BODY_BYTES = 128 * 1024
# AWS rejects a SigV4 signature more than 15 minutes away from its clock.
MAX_CLOCK_SKEW_SECONDS = 900
# AWS allows 25 on-demand rotations per KMS key (RotateKeyOnDemand); past it, LimitExceededException.
ON_DEMAND_ROTATION_LIMIT = 25
# How often each worker looks for due background jobs (jobs/scheduler.py), and how long a claimed job stays
# with its node if that node dies mid-run before another may take it over.
JOB_POLL_SECONDS = 60.0
JOB_LEASE_SECONDS = 300.0
# A signed digest over the audit trail at least this often (audit/digests.py); verify allows this gap by default.
AUDIT_DIGEST_INTERVAL_SECONDS = 300.0
# At concurrency 1 a record reaches the audit hub about every millisecond (docs/benchmarks.md, "Audit trail").
DEFAULT_AUDIT_POLL_MICROSECONDS = 2000


# The request line and headers together (server/connections.py): a SigV4 request needs about 1.5 KiB; Node's
# default is the same 16 KiB. Larger heads are refused with 431 before they are parsed further.
DEFAULT_MAX_HEADER_BYTES = 16 * 1024
# A connection must deliver each whole request (head and body) this long after its first byte, and its first
# byte this long after it opens; idle keep-alive connections close after KEEP_ALIVE_SECONDS.
REQUEST_READ_SECONDS = 15.0
KEEP_ALIVE_SECONDS = 30.0
# Open connections per worker; at the cap an idle one is closed to make room, else the new one is refused.
MAX_CONNECTIONS_PER_WORKER = 1024

# AWS's console sessions last up to 12 hours; a working day is the default here.
CONSOLE_SESSION_SECONDS = 8 * 3600


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    database_url: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 1
    # None serves AWS's own region names (regions.py); otherwise exactly these, which may be private names.
    regions: frozenset[str] | None = None
    default_region: str = DEFAULT_REGION
    dev: bool = False
    clock_offset_seconds: float = 0.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_clock_skew_seconds: int = MAX_CLOCK_SKEW_SECONDS
    unseal_passphrase: str | None = field(default=None, repr=False)
    # "database": records durable before answers (the only production choice); "memory": the audit
    # benchmark's baseline, dev mode only.
    audit_sink: str = "database"
    audit_digest_interval_seconds: float = AUDIT_DIGEST_INTERVAL_SECONDS
    audit_retention_days: float | None = None  # None keeps every record
    # Where signed digests are anchored outside the database (audit/anchor.py): a directory meant for another
    # volume or host, and/or a syslog address ("/dev/log", "host:port"). Production start requires a choice.
    audit_anchor_dir: Path | None = None
    audit_anchor_syslog: str | None = None
    # The longest the audit hub polls for the next record before it sleeps (a lone request's worker polls
    # for its ack half as long): CPU traded for latency at low concurrency (audit/poll.py). 0: never poll.
    audit_poll_microseconds: int = DEFAULT_AUDIT_POLL_MICROSECONDS
    on_demand_rotation_limit: int = ON_DEMAND_ROTATION_LIMIT
    job_poll_seconds: float = JOB_POLL_SECONDS
    job_lease_seconds: float = JOB_LEASE_SECONDS
    # Proxies whose X-Forwarded-For/-Proto are believed (addresses or networks). Empty: none, not even
    # loopback, so no local process can pose as another address (aws:SourceIp, the audit record's
    # sourceIPAddress) or as TLS (aws:SecureTransport, the console cookie's Secure attribute).
    trusted_proxies: tuple[str, ...] = ()
    tls_cert: Path | None = None  # serve HTTPS with this certificate chain (PEM) and tls_key
    tls_key: Path | None = None
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    request_read_seconds: float = REQUEST_READ_SECONDS
    keep_alive_seconds: float = KEEP_ALIVE_SECONDS
    max_connections_per_worker: int = MAX_CONNECTIONS_PER_WORKER
    # Networks POST /unseal answers from (server/unseal_gate.py); empty: any peer. "127.0.0.1/32,::1/128"
    # keeps the passphrase off the network entirely.
    unseal_networks: tuple[str, ...] = ()
    console: bool = True  # serve the web console at /console
    console_session_seconds: int = CONSOLE_SESSION_SECONDS  # a console sign-in lasts this long, at most

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be between 1 and 65535, not {self.port}")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.regions is not None:
            bad = sorted(r for r in self.regions if not is_valid_region(r))
            if bad or not self.regions:
                raise ValueError(f"invalid region list: {sorted(self.regions)}")
        if self.clock_offset_seconds and not self.dev:
            raise ValueError("a clock offset is only allowed in dev mode")
        if self.audit_sink not in ("database", "memory"):
            raise ValueError(f"audit sink must be 'database' or 'memory', not {self.audit_sink!r}")
        if self.audit_sink == "memory" and not self.dev:
            raise ValueError("an in-memory audit trail is only allowed in dev mode (records would not be durable)")
        if not 1 <= self.audit_digest_interval_seconds <= 86_400:
            raise ValueError("the audit digest interval must be between 1 second and 1 day")
        if not 0 <= self.audit_poll_microseconds <= 100_000:
            raise ValueError("the audit poll limit must be between 0 and 100000 microseconds")
        if self.audit_retention_days is not None and self.audit_retention_days < 1:
            raise ValueError("audit retention must be at least 1 day (or unset to keep everything)")
        if self.max_body_bytes < 1024:
            raise ValueError("max body size must be at least 1024 bytes")
        if self.on_demand_rotation_limit < 0:
            raise ValueError("the on-demand rotation limit cannot be negative")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both a certificate (--tls-cert) and its key (--tls-key)")
        if not 1024 <= self.max_header_bytes <= 1024 * 1024:
            raise ValueError("the header limit must be between 1 KiB and 1 MiB")
        if not 1 <= self.request_read_seconds <= 3600 or not 1 <= self.keep_alive_seconds <= 3600:
            raise ValueError("request read and keep-alive timeouts must be between 1 second and 1 hour")
        if not 16 <= self.max_connections_per_worker <= 1_000_000:
            raise ValueError("the connection cap must be between 16 and 1000000 per worker")
        for proxy in (*self.trusted_proxies, *self.unseal_networks):
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"{proxy!r} is not an IP address or network") from None
        if not 60 <= self.console_session_seconds <= 43_200:
            raise ValueError("a console session lasts between 1 minute and 12 hours")
        if not self.job_poll_seconds > 0 or not self.job_lease_seconds > 0:
            raise ValueError("job poll interval and job lease must be positive (seconds)")

    def serves_region(self, region: str) -> bool:
        return region in (aws_regions() if self.regions is None else self.regions)


@dataclass(frozen=True, slots=True)
class EnvSetting:
    """One ``OPENKMS_*`` variable: its name, its default as it would be typed (None: unset), and its type."""

    name: str
    default: str | None
    type: Callable[[str], Any] = str

    def text(self) -> str | None:
        """The environment's text, else the default, unconverted. Empty is unset only where no default exists."""
        value = os.environ.get(self.name)
        if value is None or (value == "" and self.default is None):
            return self.default
        return value

    def is_set(self) -> bool:
        """For on/off variables: anything but unset, empty or ``0`` turns it on."""
        return os.environ.get(self.name, "") not in ("", "0")


# Every setting the environment gives a default for, in one place; the flag of the same name overrides it.
ENV_DATA_DIR = EnvSetting("OPENKMS_DATA_DIR", DEFAULT_DATA_DIR, Path)
ENV_DATABASE_URL = EnvSetting("OPENKMS_DATABASE_URL", None)  # None: SQLite in the data directory
ENV_HOST = EnvSetting("OPENKMS_HOST", DEFAULT_HOST)
ENV_PORT = EnvSetting("OPENKMS_PORT", str(DEFAULT_PORT), int)
ENV_REGIONS = EnvSetting("OPENKMS_REGIONS", None)  # None: AWS's own region names
ENV_JOB_POLL_SECONDS = EnvSetting("OPENKMS_JOB_POLL_SECONDS", str(JOB_POLL_SECONDS), float)
ENV_JOB_LEASE_SECONDS = EnvSetting("OPENKMS_JOB_LEASE_SECONDS", str(JOB_LEASE_SECONDS), float)
ENV_ON_DEMAND_ROTATION_LIMIT = EnvSetting("OPENKMS_ON_DEMAND_ROTATION_LIMIT", str(ON_DEMAND_ROTATION_LIMIT), int)
ENV_AUDIT_DIGEST_INTERVAL = EnvSetting("OPENKMS_AUDIT_DIGEST_INTERVAL", str(AUDIT_DIGEST_INTERVAL_SECONDS), float)
ENV_AUDIT_RETENTION_DAYS = EnvSetting("OPENKMS_AUDIT_RETENTION_DAYS", None, float)  # None: keep every record
ENV_AUDIT_ANCHOR_DIR = EnvSetting("OPENKMS_AUDIT_ANCHOR_DIR", None, Path)
# "1"/"true"/"yes": the default address; "0"/"false"/"no" or empty: none; else an address (cli/serve.py).
ENV_AUDIT_ANCHOR_SYSLOG = EnvSetting("OPENKMS_AUDIT_ANCHOR_SYSLOG", None)
ENV_NO_AUDIT_ANCHOR = EnvSetting("OPENKMS_NO_AUDIT_ANCHOR", None)  # on/off: EnvSetting.is_set
ENV_AUDIT_POLL_US = EnvSetting("OPENKMS_AUDIT_POLL_US", str(DEFAULT_AUDIT_POLL_MICROSECONDS), int)
ENV_TRUSTED_PROXIES = EnvSetting("OPENKMS_TRUSTED_PROXIES", "")
ENV_UNSEAL_FROM = EnvSetting("OPENKMS_UNSEAL_FROM", "")
ENV_MAX_HEADER_BYTES = EnvSetting("OPENKMS_MAX_HEADER_BYTES", str(DEFAULT_MAX_HEADER_BYTES), int)
ENV_REQUEST_READ_SECONDS = EnvSetting("OPENKMS_REQUEST_READ_SECONDS", str(REQUEST_READ_SECONDS), float)
ENV_KEEP_ALIVE_SECONDS = EnvSetting("OPENKMS_KEEP_ALIVE_SECONDS", str(KEEP_ALIVE_SECONDS), float)
ENV_MAX_CONNECTIONS_PER_WORKER = EnvSetting("OPENKMS_MAX_CONNECTIONS_PER_WORKER", str(MAX_CONNECTIONS_PER_WORKER), int)
ENV_ENDPOINT = EnvSetting("OPENKMS_ENDPOINT", f"http://{DEFAULT_HOST}:{DEFAULT_PORT}")  # what `openkms unseal` calls


def env_argument(setting: EnvSetting) -> dict[str, Any]:
    """``add_argument``'s default and type from the table. The default stays text: argparse converts it with
    ``type`` as if it had been typed, so a malformed ``OPENKMS_*`` value is a usage error (exit 2) rather than a
    traceback while the parser is being built."""
    return {"default": setting.text(), "type": setting.type}


def default_data_dir() -> Path:
    return Path(ENV_DATA_DIR.text() or "").resolve()


def default_database_url(data_dir: Path) -> str:
    return ENV_DATABASE_URL.text() or f"sqlite:///{data_dir / 'openkms.db'}"


def parse_regions(text: str | None) -> frozenset[str] | None:
    """``"us-east-1,eu-west-1"`` -> a set; empty or ``*`` -> None, AWS's own region names."""
    if text is None or text.strip() in ("", "*"):
        return None
    return frozenset(part.strip() for part in text.split(",") if part.strip())
