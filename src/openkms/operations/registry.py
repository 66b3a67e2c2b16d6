"""Operation name -> handler, filled by the :func:`operation` decorator (no if/elif dispatch)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openkms import eventnames, opfacts
from openkms.context import RequestContext
from openkms.operations.services import Services

Params = dict[str, Any]
Result = dict[str, Any]
Handler = Callable[[Services, RequestContext, Params], Result]

_HANDLERS: dict[str, Handler] = {}


def operation(name: str) -> Callable[[Handler], Handler]:
    """Register ``handler`` for the KMS operation ``name``, whose facts (slow, mutating, ...) are declared in
    openkms/opfacts.py, once, for the audit layer as well."""
    facts = opfacts.FACTS.get(name)
    if facts is None:
        raise RuntimeError(f"operation {name} has no facts declared in openkms/opfacts.py")

    def register(handler: Handler) -> Handler:
        if name in _HANDLERS:
            raise RuntimeError(f"operation {name} registered twice")
        _HANDLERS[name] = _ensuring_managed_keys(handler, facts) if facts.managed_key_parameters else handler
        return handler

    return register


def _ensuring_managed_keys(handler: Handler, facts: opfacts.OperationFacts) -> Handler:
    """``handler``, preceded by the step that creates the AWS managed keys (``alias/aws/<service>``) its
    parameters name and that do not exist yet (operations/managed_keys.py), in their own transaction."""
    parameters = facts.managed_key_parameters

    def run(svc: Services, ctx: RequestContext, params: Params) -> Result:
        from openkms.operations import managed_keys  # it builds on the operation modules

        managed_keys.ensure_named(svc, ctx, [params.get(parameter) for parameter in parameters])
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
    """Every eventName the audit trail can hold: the KMS operations, the admin operations (the console's
    cloudtrail and ce calls, the IAM changes of ``openkms iam``), and the names recorded outside them
    (openkms/eventnames.py: the console's sign-in, unseal attempts, summaries of unauthenticated calls, the STS
    actions served on this endpoint, and ``Unknown``). Audit queries refuse other names."""
    from openkms import apimodel

    _load_all()
    return apimodel.operation_names() | frozenset(_ADMIN) | eventnames.OUTSIDE_OPERATIONS


def facts_for(name: str | None) -> opfacts.OperationFacts:
    """The declared facts of ``name`` (openkms/opfacts.py); a name outside the KMS API only reads."""
    return opfacts.of(name)


def is_slow(name: str) -> bool:
    """True for operations that may hold a CPU for long (RSA key generation takes up to seconds)."""
    return opfacts.of(name).slow


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
