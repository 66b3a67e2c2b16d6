"""Operation name -> handler, filled by the :func:`operation` decorator (no if/elif dispatch)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openkms import eventnames
from openkms.context import RequestContext
from openkms.operations.services import Services

Params = dict[str, Any]
Result = dict[str, Any]
Handler = Callable[[Services, RequestContext, Params], Result]

_HANDLERS: dict[str, Handler] = {}
_SLOW: set[str] = set()


def operation(name: str, *, slow: bool = False) -> Callable[[Handler], Handler]:
    """Register ``handler`` for ``name``; ``slow`` ones (key generation) run off the event loop."""

    def register(handler: Handler) -> Handler:
        if name in _HANDLERS:
            raise RuntimeError(f"operation {name} registered twice")
        _HANDLERS[name] = _creating_managed_keys(handler)
        if slow:
            _SLOW.add(name)
        return handler

    return register


def _creating_managed_keys(handler: Handler) -> Handler:
    """``handler``, run once more after creating the AWS managed key it named before it existed
    (operations/managed_keys.py). The first run failed at resolving the key, before any change."""

    def run(svc: Services, ctx: RequestContext, params: Params) -> Result:
        from openkms.operations import keyrefs, managed_keys

        for _ in range(2):  # ReEncrypt may name two such keys
            try:
                return handler(svc, ctx, params)
            except keyrefs.ManagedKeyMissing as missing:
                managed_keys.create_on_first_use(svc, missing, ctx.now)
        return handler(svc, ctx, params)

    run.__name__ = getattr(handler, "__name__", "handler")
    run.__doc__ = handler.__doc__
    return run


@dataclass(frozen=True, slots=True)
class AdminOperation:
    """An operation of another AWS service's API that the console calls (CloudTrail's LookupEvents, Cost
    Explorer's GetCostAndUsage): authorised with that service's action and recorded with its event source,
    like every KMS call, but not reachable through ``X-Amz-Target: TrentService.*``. Its handler validates
    its own parameters (the KMS model does not describe them)."""

    name: str
    event_source: str  # e.g. cloudtrail.amazonaws.com
    handler: Handler


_ADMIN: dict[str, AdminOperation] = {}


def admin_operation(name: str, event_source: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        if name in _ADMIN:
            raise RuntimeError(f"admin operation {name} registered twice")
        _ADMIN[name] = AdminOperation(name, event_source, handler)
        return handler

    return register


def admin_operation_for(name: str) -> AdminOperation | None:
    _load_all()
    return _ADMIN.get(name)


def recorded_event_names() -> frozenset[str]:
    """Every eventName the audit trail can hold: the KMS operations, the admin operations, and the names the
    audit layer records outside them (openkms/eventnames.py: the console's sign-in, the identity changes of
    ``openkms iam``, unseal attempts, summaries of unauthenticated calls, and ``Unknown``).
    Audit queries refuse other names."""
    from openkms import apimodel

    _load_all()
    return apimodel.operation_names() | frozenset(_ADMIN) | eventnames.OUTSIDE_OPERATIONS


def is_slow(name: str) -> bool:
    """True for operations that may hold a CPU for long (RSA key generation takes up to seconds)."""
    _load_all()
    return name in _SLOW


def handler_for(name: str) -> Handler | None:
    _load_all()
    return _HANDLERS.get(name)


def implemented_operations() -> frozenset[str]:
    _load_all()
    return frozenset(_HANDLERS)


def _load_all() -> None:
    # Importing the modules runs their decorators; kept here so callers need not know the module list.
    from openkms.operations import (  # noqa: F401
        agreement,
        aliases,
        audit_lookup,
        cost_and_usage,
        datakeypairs,
        encapsulation,
        encryption,
        grants,
        iam_admin,
        key_import,
        keypolicies,
        keys,
        lastusage,
        macs,
        publickeys,
        rotation,
        signing,
        tags,
    )
