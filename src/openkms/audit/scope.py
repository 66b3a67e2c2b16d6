"""A state change and its audit record commit in one transaction (docs/design.md section 8).

The server opens a :class:`Pending` record for each API call (:func:`begin`). The storage's
``before_commit`` hook (:func:`before_commit`, given when the storage is opened) appends that record, as a success, to
the call's write transaction; if the commit fails, neither the change nor the record exists and the server
records the failure instead. A call may open at most one write transaction: a second one would need a
second record, so it fails loudly (tests catch an operation that breaks the rule).

Write transactions outside any operation (background jobs, install setup) are not touched here; jobs
note their changes as service actions, recorded here when their transaction commits. The command line's
changes are operations (operations/iam_admin.py): a call like any other. A change made by a function that
opens its transaction itself reads what its record answers there, through ``AuditNote.respond``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

from openkms.audit import events
from openkms.audit import log as audit_log
from openkms.context import take_service_actions
from openkms.storage.ports import Transaction

_CURRENT: ContextVar[Pending | None] = ContextVar("openkms_audit_pending", default=None)


class Pending:
    """The record of the call in progress, until it is written."""

    __slots__ = ("call", "in_transaction", "written")

    def __init__(self, call: events.Call) -> None:
        self.call = call
        self.in_transaction = False  # appended to a write transaction that has not committed yet
        self.written = False  # durable (in a committed transaction)


def begin(call: events.Call) -> tuple[Pending, Token[Pending | None]]:
    pending = Pending(call)
    return pending, _CURRENT.set(pending)


def current() -> Pending | None:
    """The record of the call being executed in this context, if any."""
    return _CURRENT.get()


def end(token: Token[Pending | None]) -> None:
    _CURRENT.reset(token)


@contextmanager
def outside_call() -> Iterator[None]:
    """Bookkeeping that a call triggers but that is not the call's change (the usage roll-up counting the
    trail itself): its write transactions carry no record of the call, which keeps its one transaction."""
    token = _CURRENT.set(None)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def before_commit(tx: Transaction) -> Callable[[], None] | None:
    pending = _CURRENT.get()
    if pending is None:  # a background job's step: it records the actions it noted
        actions = take_service_actions()
        if actions:
            audit_log.append(tx, [events.service_event(action) for action in actions])
        return None
    if pending.written or pending.in_transaction:
        raise RuntimeError(f"{pending.call.operation} opened a second write transaction; one record per call")
    note = pending.call.note
    if note.respond is not None:  # the answer AWS logs, read where the change made it
        note.result = note.respond(tx)
    audit_log.append(tx, [events.build(pending.call, None, None)])
    pending.in_transaction = True

    def committed() -> None:
        pending.written = True

    return committed
