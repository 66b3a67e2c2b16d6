"""One door for every operation, whoever calls: the KMS API over HTTP, the console, a request refused for its
size, and in-process tests all run an operation here, with the same validation, authorisation and audit record.

:meth:`OperationRunner.run` takes the facts of the call (:class:`~openkms.audit.events.Call`) and a *step*,
the caller's own part (for the API: SigV4, the target, the JSON body; for the console: nothing, its caller is
signed in), and does the rest the same way for all of them:

    sealed? -> reserve a record -> the step, off the loop if the operation is slow -> the record (written in
    the call's own transaction by a state change, else built here) -> admitted? (a call nobody signed is
    recorded within a budget, else counted) -> durable -> the outcome (KMSInternalException if it was not)

Records made outside an operation (a console sign-in, an unseal attempt, the summaries of counted calls) take
:meth:`OperationRunner.record`, which shares the admission and the writer.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from openkms import ids
from openkms.audit import events
from openkms.audit import scope as audit_scope
from openkms.audit.unauthenticated import UnauthenticatedBudget
from openkms.audit.writer import AuditWriter
from openkms.context import Principal, RequestContext
from openkms.errors import KMSError, KMSInternalException, ServiceSealedException, UnsupportedOperationException
from openkms.operations import registry
from openkms.operations.services import Services
from openkms.server.error_map import as_kms_error
from openkms.server.validate import validate_input
from openkms.storage.audit import AuditRecord

log = logging.getLogger("openkms.server")

T = TypeVar("T")

# The caller's part of a call: given the call's facts (it fills in the principal, the region, ...), runs the
# operation and returns its result (what the record shows) and what the caller answers with (the response body
# for the API, the result itself for the console). It raises to fail; every exception leaves through the one
# error map.
Step = Callable[[events.Call], tuple[dict[str, Any], T]]


@dataclass(frozen=True, slots=True)
class Caller:
    """Where a call made by a signed-in front (the console) comes from, for its audit record."""

    source_ip: str
    user_agent: str
    secure: bool


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """One call's outcome: ``answer`` and ``result`` if it succeeded and its record is durable, else ``error``."""

    request_id: str
    result: dict[str, Any] | None
    answer: T | None
    error: KMSError | None


class OperationRunner:
    def __init__(self, services: Services, audit: AuditWriter) -> None:
        self._services = services
        self._audit = audit
        self._unauthenticated = UnauthenticatedBudget(services.settings.default_region)

    def new_call(
        self,
        source_ip: str,
        user_agent: str,
        operation: str | None,
        principal: Principal | None = None,
        event_source: str = events.EVENT_SOURCE,
        region: str | None = None,
    ) -> events.Call:
        """The facts of a call that begins now (its request id, time and the default region until SigV4 says)."""
        now = self._services.clock.now()
        return events.Call(
            request_id=ids.new_request_id(now),
            time=now,
            source_ip=source_ip,
            user_agent=user_agent[:1024],
            region=region or self._services.settings.default_region,
            operation=operation,
            principal=principal,
            event_source=event_source,
        )

    async def run(self, call: events.Call, step: Step[T]) -> Outcome[T]:
        """Run ``step`` for ``call`` and make its record durable before the outcome is handed back (fail
        closed: if the record cannot be written, the outcome is KMSInternalException and nothing else)."""
        if self._services.keyring.sealed:  # answers nothing and touches no storage (docs/tests.md P-4)
            return Outcome(str(uuid.uuid4()), None, None, ServiceSealedException())
        with self._audit.reserve() as reservation:
            if call.operation is not None and registry.is_slow(call.operation):
                # Key generation can hold a CPU for a second: keep this worker's other connections moving.
                outcome, record = await asyncio.to_thread(self._execute, call, step)
            else:
                outcome, record = self._execute(call, step)
            if record is None or not self._admitted(record, call.claimed_access_key_id):
                return outcome
            if await reservation.submit(record):
                return outcome
        log.error("request %s failed: its audit record could not be written", call.request_id)
        return Outcome(call.request_id, None, None, KMSInternalException())

    async def run_as(
        self, principal: Principal, operation: str, raw: dict[str, Any], via: Caller, region: str | None = None
    ) -> Outcome[dict[str, Any]]:
        """Run ``operation`` for a caller another front already authenticated (the console's signed-in user, the
        command line's operator); ``region``: where the call is recorded (IAM's are global: us-east-1)."""
        admin = registry.admin_operation_for(operation)
        source = admin.event_source if admin is not None else events.EVENT_SOURCE
        call = self.new_call(via.source_ip, via.user_agent, operation, principal, source, region)

        def step(call: events.Call) -> tuple[dict[str, Any], dict[str, Any]]:
            result = self.dispatch(call, principal, operation, raw, via.secure)
            return result, result

        return await self.run(call, step)

    def dispatch(
        self, call: events.Call, principal: Principal, operation: str, raw: dict[str, Any], secure: bool
    ) -> dict[str, Any]:
        """Validate and run ``operation`` for an authenticated caller (every step ends here)."""
        admin = registry.admin_operation_for(operation) if call.event_source != events.EVENT_SOURCE else None
        if admin is not None:
            handler = admin.handler
            params = dict(raw)  # an admin operation validates its own parameters
        else:
            found = registry.handler_for(operation)
            if found is None:
                raise UnsupportedOperationException(f"{operation} is not supported by this version of openkms.")
            handler = found
            params = validate_input(operation, raw)
        call.params = params
        ctx = RequestContext(
            request_id=call.request_id,
            operation=operation,
            principal=principal,
            region=call.region,
            source_ip=call.source_ip,
            user_agent=call.user_agent,
            now=call.time,
            params=params,
            secure_transport=secure,
            audit=call.note,
        )
        return handler(self._services, ctx, params)

    async def record(
        self, record: AuditRecord, claimed_access_key_id: str | None = None, *, budgeted: bool = True
    ) -> bool:
        """Make a record made outside an operation durable; False if it could not be written. Unless it is
        ``budgeted=False``, one nobody signed is recorded within the unauthenticated budget and counted into a
        summary beyond it (True: accounted for)."""
        if budgeted and not self._admitted(record, claimed_access_key_id):
            return True
        with self._audit.reserve() as reservation:
            return await reservation.submit(record)

    async def write_summaries(self) -> None:
        """The counted unauthenticated calls as summary records (fail-open here: their answers are gone)."""
        for summary in self._unauthenticated.drain(self._services.clock.now()):
            with self._audit.reserve() as reservation:
                if not await reservation.submit(summary):
                    log.error("a summary of unauthenticated requests from %s could not be written", summary.source_ip)

    def _execute(self, call: events.Call, step: Step[T]) -> tuple[Outcome[T], AuditRecord | None]:
        """The step, and its record unless a state change already wrote it in its own transaction."""
        pending, token = audit_scope.begin(call)
        try:
            result, answer = step(call)
        except Exception as exc:  # every failure leaves through the one error map
            error = as_kms_error(exc, call.operation)
            record = None if pending.written else events.build(call, error.code, error.message)
            return Outcome(call.request_id, None, None, error), record
        finally:
            audit_scope.end(token)
        record = None if pending.written else events.build(call, None, None, result)
        return Outcome(call.request_id, result, answer, None), record

    def _admitted(self, record: AuditRecord, claimed_access_key_id: str | None) -> bool:
        """Whether to write ``record`` now: always for a verified caller; for a call nobody signed, within
        the unauthenticated budget (audit/unauthenticated.py), else it is counted into a summary record."""
        return bool(record.principal_arn) or self._unauthenticated.admit(
            record, record.event_time, claimed_access_key_id
        )
