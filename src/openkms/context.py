"""Who is calling, from where, for which request: everything an operation may know of the caller.

It sits in the lowest layer, beside ids, errors and clock, because auth (which builds the Principal), audit (which
records it) and operations (which act on it) all need it and none may import another for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

IAM_USER = "IAMUser"  # a caller signed with an access key
ROOT = "Root"  # the account itself, operated at the command line


@dataclass(frozen=True, slots=True)
class Principal:
    account_id: str
    arn: str
    user_name: str
    access_key_id: str
    user_id: str = ""  # AIDA... (the audit record's principalId)
    # "IAMUser" (signed with an access key), or "Root": the account itself, operated at the command line by the
    # operating-system user ``user_name`` (operations/iam_admin.py ``operator``); no access key, no policies.
    kind: str = IAM_USER


@dataclass(slots=True)
class AuditNote:
    """What only the operation knows and the request's audit record needs (filled in as it runs).

    ``resources`` are the keys the request resolved, in order (ReEncrypt: source, then destination), each as
    (key ARN, key spec); ``key_material_id`` is the backing version used; ``result`` is set by state-changing
    operations whose answer AWS logs, before their transaction ends (the record is written in it). ``respond``
    instead reads that answer inside the transaction, just before the record joins it (audit/scope.py): for a
    change made by a function that opens its transaction itself (an IAM user's unique id is made in there). It
    is given the write transaction, typed loosely because this layer sees no storage.
    """

    resources: list[tuple[str, str]] = field(default_factory=list)
    key_material_id: str | None = None
    result: dict[str, Any] | None = None
    respond: Callable[[Any], dict[str, Any] | None] | None = None

    def add_key(self, arn: str, key_spec: str) -> None:
        if all(arn != known for known, _ in self.resources):
            self.resources.append((arn, key_spec))


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str
    operation: str
    principal: Principal
    region: str  # from the SigV4 credential scope
    source_ip: str
    user_agent: str
    now: float  # epoch seconds, from the injected clock, fixed for the whole request
    params: Mapping[str, Any] = field(default_factory=dict)  # the validated request, for condition keys
    secure_transport: bool = False  # TLS between the client and this server (aws:SecureTransport)
    audit: AuditNote = field(default_factory=AuditNote)


@dataclass(frozen=True, slots=True)
class ServiceAction:
    """A change the service made on its own (a background job): recorded like a call, as CloudTrail records
    AWS's own events (``eventType`` AwsServiceEvent), in the transaction that made the change."""

    event_name: str  # RotateKey, DeleteKey, DeleteExpiredKeyMaterial
    key_arn: str
    key_spec: str
    at: float  # the job's (injected) clock
    details: Mapping[str, Any] = field(default_factory=dict)


_SERVICE_ACTIONS: ContextVar[list[ServiceAction] | None] = ContextVar("openkms_service_actions", default=None)


@contextmanager
def service_actions() -> Iterator[None]:
    """Around a job step's write transaction: the actions it notes are recorded when it commits."""
    token = _SERVICE_ACTIONS.set([])
    try:
        yield
    finally:
        _SERVICE_ACTIONS.reset(token)


def note_service_action(action: ServiceAction) -> None:
    holder = _SERVICE_ACTIONS.get()
    if holder is None:
        raise RuntimeError("a service action must be noted inside service_actions() (it would go unrecorded)")
    holder.append(action)


def take_service_actions() -> list[ServiceAction]:
    """The actions noted in this context since the last take (the audit layer's commit hook calls this)."""
    holder = _SERVICE_ACTIONS.get()
    if not holder:
        return []
    taken = list(holder)
    holder.clear()
    return taken
