"""Composition root: builds the ports and the app for one worker process."""

from __future__ import annotations

from collections.abc import Callable

from openkms.audit import scope as audit_scope
from openkms.audit.hub import local_hub
from openkms.audit.usage import roll_up
from openkms.audit.writer import AuditWriter, MemoryWriter
from openkms.auth.credentials import Authenticator
from openkms.auth.sessions import SessionStore
from openkms.clock import Clock, SystemClock
from openkms.console.app import Console
from openkms.errors import KMSError
from openkms.operations import registry
from openkms.operations.materials import MaterialCache
from openkms.operations.services import Services
from openkms.regions import aws_regions
from openkms.seal.keyring import Keyring
from openkms.seal.root_key import unseal_root_key
from openkms.server.app import KMSApplication
from openkms.server.unseal_gate import UnsealGate
from openkms.server.validate import validate_input
from openkms.settings import Settings
from openkms.storage.ports import Storage


def build_services(settings: Settings, storage: Storage, keyring: Keyring, clock: Clock | None = None) -> Services:
    clock = clock or SystemClock(settings.clock_offset_seconds)
    return Services(storage, keyring, clock, settings, MaterialCache(keyring), roll_up)


def warm_up(settings: Settings) -> None:
    """Load, before the first request, what that request would otherwise load on the event loop: AWS's region
    list (about 130 ms of botocore endpoint data), every operation module (about 70 ms) and the API model
    (about 20 ms). Lazily, the first request of each worker paid them, and the loop-lag monitor saw it."""
    if settings.regions is None:
        aws_regions()
    registry.handler_for("Encrypt")  # imports every operation module
    try:
        validate_input("ListKeys", {"Limit": 0})  # loads and compiles the model's shapes
    except KMSError:
        pass  # the refusal is expected; the model is loaded either way


def build_app(
    services: Services,
    on_unsealed: Callable[[bytes], None] | None = None,
    on_startup: Callable[[], None] | None = None,
    audit: AuditWriter | None = None,
    unseal_gate: UnsealGate | None = None,
) -> KMSApplication:
    warm_up(services.settings)
    storage = services.storage
    if storage.before_commit is not audit_scope.before_commit:  # state changes commit with their records
        raise ValueError("the service's storage must be opened with before_commit=openkms.audit.scope.before_commit")
    if audit is None:
        # A worker gets its client of the node's hub from the supervisor; in one process, the same hub runs here.
        audit = MemoryWriter() if services.settings.audit_sink == "memory" else local_hub(storage)

    def unseal(secret: str) -> bytes:
        return unseal_root_key(storage, secret=secret)

    authenticator = Authenticator(storage, services.keyring)
    app = KMSApplication(
        services,
        authenticator,
        audit,
        unseal=unseal,
        on_unsealed=on_unsealed,
        on_startup=on_startup,
        unseal_gate=unseal_gate,
    )
    if services.settings.console:
        sessions = SessionStore(storage, authenticator, services.settings.console_session_seconds)
        keyring = services.keyring
        console = Console(
            sessions,
            app.runner,
            services.clock,
            sealed=lambda: keyring.sealed,
        )
        app.mount_console(console)
    return app
