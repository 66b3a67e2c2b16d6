"""The console's way to the operations layer: every call as the signed-in principal, authorised and audited."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from openkms.context import Principal
from openkms.errors import KMSError
from openkms.server.operation_runner import Caller, OperationRunner
from openkms.server.validate import serialize_output


class OperationFailed(Exception):
    """An operation answered with an error; ``error`` is what the API would have answered."""

    def __init__(self, error: KMSError) -> None:
        super().__init__(error.message)
        self.error = error

    @property
    def code(self) -> str:
        return self.error.code

    @property
    def message(self) -> str:
        return self.error.message or self.error.code


@dataclass(frozen=True, slots=True)
class Outcome:
    """A call that may have failed: ``result`` (wire form: epoch seconds, base64) or ``error``."""

    result: dict[str, Any] | None
    error: OperationFailed | None

    def value(self) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


class Client:
    def __init__(self, runner: OperationRunner, principal: Principal, caller: Caller) -> None:
        self._runner = runner
        self.principal = principal
        self._caller = caller

    async def attempt(self, operation: str, params: dict[str, Any] | None = None) -> Outcome:
        outcome = await self._runner.run_as(self.principal, operation, dict(params or {}), self._caller)
        if outcome.error is not None:
            return Outcome(None, OperationFailed(outcome.error))
        return Outcome(serialize_output(outcome.result or {}), None)

    async def call(self, operation: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The result, or :class:`OperationFailed`."""
        return (await self.attempt(operation, params)).value()

    async def attempt_all(self, calls: list[tuple[str, dict[str, Any]]]) -> list[Outcome]:
        """Several calls at once: they run one after another, and their records share a group commit."""
        return list(await asyncio.gather(*(self.attempt(name, params) for name, params in calls)))

    async def pages(self, operation: str, params: dict[str, Any], items: str, limit: int = 10_000) -> list[Any]:
        """Every item of a paged List* operation (Marker/NextMarker/Truncated), up to ``limit``."""
        found: list[Any] = []
        marker: str | None = None
        while len(found) < limit:
            page = await self.call(operation, {**params, **({"Marker": marker} if marker else {})})
            found.extend(page.get(items, []))
            marker = page.get("NextMarker")
            if not page.get("Truncated") or not marker:
                break
        return found[:limit]
