"""``openkms serve``, ``init`` and ``unseal``: starting the service and opening its root of trust."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from openkms import bootstrap, identity
from openkms.audit.anchor import DEFAULT_SYSLOG_ADDRESS, AnchorError, check_sinks
from openkms.cli.common import (
    CliError,
    CliValidationError,
    add_storage_arguments,
    open_migrated,
    read_passphrase,
    read_secret_file,
    resolve_paths,
)
from openkms.clock import SystemClock
from openkms.seal import keyfile
from openkms.seal.base import UnsealError
from openkms.seal.root_key import (
    initialize_with_keyfile,
    initialize_with_passphrase,
    is_initialized,
    seal_kind,
    unseal_root_key,
)
from openkms.settings import (
    AUDIT_DIGEST_INTERVAL_SECONDS,
    CONSOLE_SESSION_SECONDS,
    DEFAULT_AUDIT_POLL_MICROSECONDS,
    DEFAULT_MAX_HEADER_BYTES,
    ENV_AUDIT_ANCHOR_DIR,
    ENV_AUDIT_ANCHOR_SYSLOG,
    ENV_AUDIT_DIGEST_INTERVAL,
    ENV_AUDIT_POLL_US,
    ENV_AUDIT_RETENTION_DAYS,
    ENV_ENDPOINT,
    ENV_HOST,
    ENV_JOB_LEASE_SECONDS,
    ENV_JOB_POLL_SECONDS,
    ENV_KEEP_ALIVE_SECONDS,
    ENV_MAX_CONNECTIONS_PER_WORKER,
    ENV_MAX_HEADER_BYTES,
    ENV_NO_AUDIT_ANCHOR,
    ENV_ON_DEMAND_ROTATION_LIMIT,
    ENV_PORT,
    ENV_REGIONS,
    ENV_REQUEST_READ_SECONDS,
    ENV_TRUSTED_PROXIES,
    ENV_UNSEAL_FROM,
    JOB_LEASE_SECONDS,
    JOB_POLL_SECONDS,
    KEEP_ALIVE_SECONDS,
    MAX_CONNECTIONS_PER_WORKER,
    ON_DEMAND_ROTATION_LIMIT,
    REQUEST_READ_SECONDS,
    Settings,
    env_argument,
    parse_regions,
)
from openkms.storage.ports import Storage

DEV_USER = bootstrap.ADMIN_USER
DEV_SECRET_ENV = "OPENKMS_DEV_SECRET_ACCESS_KEY"  # noqa: S105 (a variable name, not a secret)
ANCHOR_DIR_ENV = ENV_AUDIT_ANCHOR_DIR.name
ANCHOR_SYSLOG_ENV = ENV_AUDIT_ANCHOR_SYSLOG.name
NO_ANCHOR_ENV = ENV_NO_AUDIT_ANCHOR.name


def _syslog_from_env() -> str | None:
    value = (ENV_AUDIT_ANCHOR_SYSLOG.text() or "").strip()
    if value.lower() in ("", "0", "false", "no"):
        return None
    return DEFAULT_SYSLOG_ADDRESS if value.lower() in ("1", "true", "yes") else value


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the KMS server",
        description=(
            "Run the KMS server. Example (ready-to-use dev server): openkms serve --dev. "
            "Production: openkms init, then openkms serve, then openkms unseal."
        ),
    )
    add_storage_arguments(serve)
    # Defaults from the environment come from the table in settings.py, as text argparse converts with ``type``
    # (env_argument), so a malformed OPENKMS_* value is a usage error (exit 2) rather than a traceback.
    serve.add_argument("--host", **env_argument(ENV_HOST))
    serve.add_argument("--port", **env_argument(ENV_PORT))
    serve.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    serve.add_argument(
        "--regions",
        **env_argument(ENV_REGIONS),
        help="comma list of the regions served, private names allowed (default: AWS's own region names)",
    )
    serve.add_argument("--dev", action="store_true", help="initialise and unseal automatically (key-file seal)")
    serve.add_argument("--dev-access-key-id", default=None, help="pin the dev administrator's access key id")
    serve.add_argument(
        "--dev-secret-access-key",
        default=None,
        help=f"pin the dev administrator's secret (visible in ps: prefer env {DEV_SECRET_ENV} or the -file option)",
    )
    serve.add_argument(
        "--dev-secret-access-key-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="read the dev administrator's secret from FILE (mode 0600 or stricter)",
    )
    serve.add_argument("--dev-account-id", default=None, help="pin the dev account id (12 digits)")
    serve.add_argument(
        "--dev-clock-offset",
        type=float,
        default=0.0,
        help="dev only: move the server's clock forward (seconds), e.g. to see keys rotate and deletions happen",
    )
    serve.add_argument(
        "--job-poll-seconds",
        **env_argument(ENV_JOB_POLL_SECONDS),
        help=f"how often each worker looks for due background jobs (default {JOB_POLL_SECONDS:g})",
    )
    serve.add_argument(
        "--job-lease-seconds",
        **env_argument(ENV_JOB_LEASE_SECONDS),
        help=f"how long a node that died mid-job keeps the job from the others (default {JOB_LEASE_SECONDS:g})",
    )
    serve.add_argument(
        "--on-demand-rotation-limit",
        **env_argument(ENV_ON_DEMAND_ROTATION_LIMIT),
        help=f"RotateKeyOnDemand calls allowed per key (default {ON_DEMAND_ROTATION_LIMIT}, as AWS)",
    )
    serve.add_argument(
        "--audit-digest-interval",
        **env_argument(ENV_AUDIT_DIGEST_INTERVAL),
        help=f"seconds between signed digests of the audit trail (default {AUDIT_DIGEST_INTERVAL_SECONDS:g})",
    )
    serve.add_argument(
        "--audit-retention-days",
        **env_argument(ENV_AUDIT_RETENTION_DAYS),
        help="prune audit records older than this (whole signed intervals; default: keep everything)",
    )
    serve.add_argument(
        "--audit-anchor-dir",
        **env_argument(ENV_AUDIT_ANCHOR_DIR),
        metavar="DIR",
        help="also write every signed audit digest to DIR, meant for another volume or host, so that truncating "
        f"the database's trail shows (`openkms audit verify --anchor-dir DIR`; env {ANCHOR_DIR_ENV})",
    )
    serve.add_argument(
        "--audit-anchor-syslog",
        nargs="?",
        const=DEFAULT_SYSLOG_ADDRESS,
        default=_syslog_from_env(),
        metavar="ADDRESS",
        help=f"also log a line per signed audit digest to syslog: a socket path (default {DEFAULT_SYSLOG_ADDRESS}) or "
        f"host[:port] over UDP (env {ANCHOR_SYSLOG_ENV}: 1 or an address)",
    )
    serve.add_argument(
        "--no-audit-anchor",
        action="store_true",
        default=ENV_NO_AUDIT_ANCHOR.is_set(),
        help="anchor audit digests nowhere outside the database: whoever can write the database can then cut the "
        f"trail's newest records unseen (env {NO_ANCHOR_ENV}=1). Production start needs an anchor or this",
    )
    serve.add_argument(
        "--audit-poll-us",
        **env_argument(ENV_AUDIT_POLL_US),
        help="longest the audit writer polls for the next record before sleeping, in microseconds: CPU traded "
        f"for latency at low concurrency; 0 never polls (default {DEFAULT_AUDIT_POLL_MICROSECONDS}; env "
        "OPENKMS_AUDIT_POLL_US)",
    )
    serve.add_argument(
        "--dev-audit-in-memory",
        action="store_true",
        help="dev only: keep audit records of reads and cryptography in memory (the audit benchmark's baseline)",
    )
    serve.add_argument(
        "--trusted-proxies",
        **env_argument(ENV_TRUSTED_PROXIES),
        help="comma list of load balancer addresses or networks whose X-Forwarded-For/-Proto are believed "
        "(default: none, not even loopback; env OPENKMS_TRUSTED_PROXIES)",
    )
    serve.add_argument(
        "--unseal-from",
        **env_argument(ENV_UNSEAL_FROM),
        help="comma list of addresses or networks POST /unseal answers (default: any; 127.0.0.1/32,::1/128 keeps "
        "the passphrase off the network; env OPENKMS_UNSEAL_FROM)",
    )
    serve.add_argument(
        "--max-header-bytes",
        **env_argument(ENV_MAX_HEADER_BYTES),
        help=f"request line and headers together; larger heads get 431 (default {DEFAULT_MAX_HEADER_BYTES})",
    )
    serve.add_argument(
        "--request-read-seconds",
        **env_argument(ENV_REQUEST_READ_SECONDS),
        help="a new connection's first byte, and each whole request after its first byte, must arrive within "
        f"this time, else the connection closes (default {REQUEST_READ_SECONDS:g})",
    )
    serve.add_argument(
        "--keep-alive-seconds",
        **env_argument(ENV_KEEP_ALIVE_SECONDS),
        help=f"an idle connection between requests closes after this (default {KEEP_ALIVE_SECONDS:g})",
    )
    serve.add_argument(
        "--max-connections-per-worker",
        **env_argument(ENV_MAX_CONNECTIONS_PER_WORKER),
        help="open connections per worker; at the cap an idle one is closed for a new one, else the new one "
        f"(default {MAX_CONNECTIONS_PER_WORKER})",
    )
    serve.add_argument("--tls-cert", type=Path, default=None, help="serve HTTPS with this PEM certificate chain")
    serve.add_argument("--tls-key", type=Path, default=None, help="the PEM private key of --tls-cert")
    serve.add_argument("--no-console", action="store_true", help="do not serve the web console at /console")
    serve.add_argument(
        "--console-session-minutes",
        type=int,
        default=CONSOLE_SESSION_SECONDS // 60,
        help=f"how long a console sign-in lasts (1 to 720; default {CONSOLE_SESSION_SECONDS // 60})",
    )
    serve.add_argument(
        "--unseal-passphrase-file",
        type=Path,
        default=None,
        help="unseal at start from this file (unattended starts; anyone who can read it can unseal)",
    )

    init = subparsers.add_parser(
        "init",
        help="create a data directory sealed with a passphrase",
        description=(
            "Create the root key, sealed with a passphrase (Argon2id). "
            "Example: openkms init --data-dir /var/lib/openkms"
        ),
    )
    add_storage_arguments(init)
    init.add_argument("--passphrase-file", type=Path, default=None, help="read the passphrase from a file")
    init.add_argument("--account-id", default=None, help="the first account (default: random 12 digits)")
    init.add_argument("--json", action="store_true")

    unseal = subparsers.add_parser(
        "unseal",
        help="unseal a running server with the passphrase",
        description="Send the passphrase to a running server. Example: openkms unseal --endpoint http://127.0.0.1:8080",
    )
    unseal.add_argument("--endpoint", **env_argument(ENV_ENDPOINT))
    unseal.add_argument("--passphrase-file", type=Path, default=None)


def _settings(args: argparse.Namespace, data_dir: Path, url: str) -> Settings:
    try:
        return Settings(
            data_dir=data_dir,
            database_url=url,
            host=args.host,
            port=args.port,
            workers=args.workers or os.cpu_count() or 1,
            regions=parse_regions(args.regions),
            dev=args.dev,
            clock_offset_seconds=args.dev_clock_offset,
            audit_sink="memory" if args.dev_audit_in_memory else "database",
            audit_digest_interval_seconds=args.audit_digest_interval,
            audit_retention_days=args.audit_retention_days,
            audit_anchor_dir=args.audit_anchor_dir,
            audit_anchor_syslog=args.audit_anchor_syslog,
            audit_poll_microseconds=args.audit_poll_us,
            job_poll_seconds=args.job_poll_seconds,
            job_lease_seconds=args.job_lease_seconds,
            on_demand_rotation_limit=args.on_demand_rotation_limit,
            trusted_proxies=tuple(p.strip() for p in args.trusted_proxies.split(",") if p.strip()),
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            console=not args.no_console,
            console_session_seconds=args.console_session_minutes * 60,
            unseal_networks=tuple(n.strip() for n in args.unseal_from.split(",") if n.strip()),
            max_header_bytes=args.max_header_bytes,
            request_read_seconds=args.request_read_seconds,
            keep_alive_seconds=args.keep_alive_seconds,
            max_connections_per_worker=args.max_connections_per_worker,
        )
    except ValueError as exc:  # a value no server could honour: refused before anything starts (exit 2)
        raise CliValidationError(str(exc)) from None


def run_serve(args: argparse.Namespace) -> int:
    data_dir, url = resolve_paths(args)
    pinned = (args.dev_access_key_id, args.dev_secret_access_key, args.dev_secret_access_key_file, args.dev_account_id)
    if not args.dev and any(pinned):
        raise CliValidationError("--dev-* options need --dev")
    _refuse_without_anchor_choice(args)
    # Secret files are read before anything starts: a file others may read is refused (exit 2) at once.
    args.dev_secret_access_key = _dev_secret(args) if args.dev else None
    unseal_file = None if args.dev else args.unseal_passphrase_file
    unseal_secret = read_secret_file(unseal_file) if unseal_file is not None else None
    settings = _settings(args, data_dir, url)
    try:
        check_sinks(settings.audit_anchor_dir, settings.audit_anchor_syslog)
    except AnchorError as exc:
        raise CliValidationError(str(exc)) from None
    if (
        not args.dev
        and url.startswith("sqlite")
        and not (data_dir / "openkms.db").exists()
        and url.endswith(str(data_dir / "openkms.db"))
    ):
        raise CliError("this data directory is not initialised: run `openkms init` first (or use --dev)")
    from openkms.server.runner import bind_worker_sockets, serve

    try:  # bind first: a taken port must fail before the data directory is touched
        sockets = bind_worker_sockets(settings)
    except OSError as exc:
        raise CliError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from None
    storage = open_migrated(url, data_dir)
    try:
        if args.dev:
            root_key: bytes | None = _dev_root_key(args, settings, storage)
        else:
            root_key = _production_root_key(storage, unseal_secret)
    except BaseException:
        for sock in set(sockets):
            sock.close()
        raise
    finally:
        storage.close()
    return serve(settings, root_key, sockets)


def _refuse_without_anchor_choice(args: argparse.Namespace) -> None:
    """Production start names where digests are anchored outside the database, or says it wants none."""
    chosen = args.audit_anchor_dir is not None or args.audit_anchor_syslog is not None
    if chosen and args.no_audit_anchor:
        raise CliValidationError(
            f"--no-audit-anchor (or {NO_ANCHOR_ENV}) contradicts --audit-anchor-dir/--audit-anchor-syslog: give one"
        )
    if not chosen and not args.no_audit_anchor and not args.dev:
        raise CliValidationError(
            "choose where signed audit digests are anchored outside the database, so that whoever can write the "
            "database cannot cut the trail's newest records unseen: --audit-anchor-dir DIR (another volume or "
            f"host; env {ANCHOR_DIR_ENV}), --audit-anchor-syslog [ADDRESS] (env {ANCHOR_SYSLOG_ENV}), or both; "
            f"or accept that risk with --no-audit-anchor (env {NO_ANCHOR_ENV}=1)"
        )


def _dev_secret(args: argparse.Namespace) -> str | None:
    """The pinned dev secret: from --dev-secret-access-key-file, the environment, or (visible in ps) the flag."""
    given = [
        name
        for name, value in (
            ("--dev-secret-access-key", args.dev_secret_access_key),
            ("--dev-secret-access-key-file", args.dev_secret_access_key_file),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise CliValidationError("give the dev secret once: --dev-secret-access-key or --dev-secret-access-key-file")
    if args.dev_secret_access_key_file is not None:
        secret = read_secret_file(args.dev_secret_access_key_file, "dev secret")
        if not secret:
            raise CliValidationError(f"the dev secret file {args.dev_secret_access_key_file} is empty")
        return secret
    if args.dev_secret_access_key is not None:
        return str(args.dev_secret_access_key)
    return os.environ.get(DEV_SECRET_ENV) or None


def _dev_root_key(args: argparse.Namespace, settings: Settings, storage: Storage) -> bytes:
    clock = SystemClock()
    key_path = settings.data_dir / keyfile.KEYFILE_NAME
    if not is_initialized(storage):
        root_key = initialize_with_keyfile(storage, key_path, clock)
    elif seal_kind(storage) != keyfile.KIND:
        raise CliError("this data directory is sealed with a passphrase; --dev needs a key-file data directory")
    else:
        root_key = unseal_root_key(storage, keyfile_path=key_path)
    account_id, credentials = _dev_admin(args, storage, root_key, clock)
    region = sorted(settings.regions)[0] if settings.regions else settings.default_region
    print("openkms dev server", flush=True)
    scheme = "https" if settings.tls_cert else "http"
    print(f"  endpoint:              {scheme}://{settings.host}:{settings.port}")
    if settings.console:
        print(f"  console:               {scheme}://{settings.host}:{settings.port}/console")
    print(f"  region:                {region}{' (and every other AWS region)' if settings.regions is None else ''}")
    print(f"  account id:            {account_id}")
    print(f"  access key id:         {credentials.access_key_id}")
    # A secret given on the command line is not echoed: the caller has it, and logs should not.
    shown = "(as given)" if args.dev_secret_access_key else credentials.secret_access_key
    print(f"  secret access key:     {shown}")
    print(f"  data directory:        {settings.data_dir}", flush=True)
    return root_key


def _dev_admin(
    args: argparse.Namespace, storage: Storage, root_key: bytes, clock: SystemClock
) -> tuple[str, identity.NewAccessKey]:
    """The dev administrator (bootstrap.py): created on first start, pinned credentials added if missing."""
    if bool(args.dev_access_key_id) != bool(args.dev_secret_access_key):
        raise CliError(
            "give both --dev-access-key-id and the secret (--dev-secret-access-key-file, env "
            f"{DEV_SECRET_ENV}, or --dev-secret-access-key)"
        )
    try:
        return bootstrap.dev_administrator(
            storage, root_key, clock, args.dev_account_id, args.dev_access_key_id, args.dev_secret_access_key
        )
    except bootstrap.BootstrapError as exc:
        raise CliError(str(exc)) from None


def _production_root_key(storage: Storage, unseal_secret: str | None) -> bytes | None:
    kind = seal_kind(storage)
    if kind is None:
        raise CliError("this data directory is not initialised: run `openkms init` first (or use --dev)")
    if kind == keyfile.KIND:
        raise CliError("this data directory was created by --dev (key-file seal); start it with --dev")
    if unseal_secret is None and not os.environ.get("OPENKMS_UNSEAL_PASSPHRASE"):
        print("openkms: starting sealed; run `openkms unseal` to unseal", file=sys.stderr, flush=True)
        return None
    try:
        return unseal_root_key(storage, secret=unseal_secret if unseal_secret is not None else read_passphrase(None))
    except UnsealError as exc:
        raise CliError(str(exc)) from None


def run_init(args: argparse.Namespace) -> int:
    data_dir, url = resolve_paths(args)
    storage = open_migrated(url, data_dir)
    clock = SystemClock()
    try:
        if is_initialized(storage):
            raise CliError("already initialised")
        secret = read_passphrase(args.passphrase_file, confirm=True, env="OPENKMS_INIT_PASSPHRASE")
        try:
            root_key = initialize_with_passphrase(storage, secret, clock)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        account_id = args.account_id or identity.new_account_id()
        admin = bootstrap.first_administrator(storage, root_key, account_id, clock)
    finally:
        storage.close()
    row = {
        "AccountId": account_id,
        "UserName": DEV_USER,
        "AccessKeyId": admin.access_key_id,
        "SecretAccessKey": admin.secret_access_key,
        "DataDir": str(data_dir),
    }
    if args.json:
        print(json.dumps(row, indent=2))
    else:
        print("Initialised. The passphrase is not stored: without it nothing here can be decrypted.")
        for name, value in row.items():
            print(f"  {name}: {value}")
    return 0


# How long `openkms unseal` keeps retrying while the server answers 429 (server/unseal_gate.py).
UNSEAL_RETRY_SECONDS = 120.0


def _retry_after(error: urllib.error.HTTPError) -> float | None:
    value = error.headers.get("retry-after", "") if error.headers is not None else ""
    return float(value) if value.isascii() and value.isdigit() and len(value) < 6 else None


def run_unseal(args: argparse.Namespace) -> int:
    secret = read_passphrase(args.passphrase_file)
    endpoint = args.endpoint.rstrip("/")
    if not endpoint.startswith(("http://", "https://")):
        raise CliError("the endpoint must be an http:// or https:// URL")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        f"{endpoint}/unseal",
        data=json.dumps({"passphrase": secret}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    give_up = time.monotonic() + UNSEAL_RETRY_SECONDS
    while True:
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (operator-given URL)
                response.read()
            break
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
            if body.get("__type") == "ValidationException" and "already unsealed" in str(body.get("message")):
                print("already unsealed (the server did not check this passphrase)")
                return 0
            wait = _retry_after(exc)
            if exc.code == 429 and wait is not None and time.monotonic() + wait < give_up:
                time.sleep(wait)  # another attempt is running, or the server backs off after a wrong one
                continue
            raise CliError(f"unseal refused: {body.get('message', exc.reason)}") from None
        except urllib.error.URLError as exc:
            raise CliError(f"cannot reach {endpoint}: {exc.reason}") from None
    # Every worker learns the key from the supervisor within milliseconds; wait until health says so.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{endpoint}/healthz", timeout=5):  # noqa: S310 (operator-given URL)
                pass
            print("unsealed")
            return 0
        except urllib.error.HTTPError:
            time.sleep(0.05)
    raise CliError("the server did not report unsealed in time")
