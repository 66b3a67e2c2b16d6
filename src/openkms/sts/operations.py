"""STS's operations, keyed by ``Action``: what each accepts and what it answers.

An operation is a function of the verified caller and its parameters that returns the members of its
``<{Action}Result>``, in the order AWS writes them. Issue 19's AssumeRole, AssumeRoleWithWebIdentity and
GetSessionToken register here the same way, with the parameters they take.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from openkms import ids
from openkms.context import Principal
from openkms.errors import UnrecognizedClientException
from openkms.eventnames import STS_EVENT_NAMES
from openkms.operations.services import Services
from openkms.sts.protocol import API_VERSION, NO_VERSION, InvalidAction, MissingAction


@dataclass(frozen=True, slots=True)
class STSContext:
    """One verified STS request, as an operation sees it."""

    request_id: str
    principal: Principal
    region: str  # from the SigV4 credential scope
    now: float
    services: Services


Handler = Callable[[STSContext, Mapping[str, str]], dict[str, str]]


@dataclass(frozen=True, slots=True)
class Operation:
    action: str
    handler: Handler  # reads the parameters it knows; AWS ignores the others, and so does it


_REGISTRY: dict[str, Operation] = {}


def operation(action: str) -> Callable[[Handler], Handler]:
    if action not in STS_EVENT_NAMES:  # audit queries accept only the names listed there
        raise RuntimeError(f"STS action {action} is not listed in openkms/eventnames.py STS_EVENT_NAMES")

    def register(handler: Handler) -> Handler:
        _REGISTRY[action] = Operation(action, handler)
        return handler

    return register


def known(action: str | None) -> str | None:
    """``action`` if it is served (for the audit record's eventName), else None."""
    return action if action is not None and action in _REGISTRY else None


def resolve(action: str | None, version: str | None) -> Operation:
    """The operation a request names, for this API version.

    AWS dispatches on (Action, Version): an unknown or empty Action and a Version other than 2011-06-15 give
    the same ``InvalidAction`` text, quoting them as sent (``NO_VERSION_SPECIFIED`` when Version is absent).
    No Action at all is MissingAction, which the front answers as AWS does, with a redirect."""
    if action is None:
        raise MissingAction()
    found = _REGISTRY.get(action)
    if found is None or version != API_VERSION:
        shown = NO_VERSION if version is None else version[:32]
        raise InvalidAction(f"Could not find operation {action[:128]} for version {shown}")
    return found


@operation("GetCallerIdentity")
def get_caller_identity(ctx: STSContext, params: Mapping[str, str]) -> dict[str, str]:
    """Who signed: no permission is needed (AWS: an explicit Deny does not stop it), so no policy is read.

    ``UserId`` is ``aws:userid``: a user's unique id (``AIDA...``, the one key policies bind to), and for the
    account's root principal the account id, as AWS answers."""
    principal = ctx.principal
    if principal.arn == ids.root_arn(principal.account_id):
        user_id = principal.account_id
    elif principal.user_id:
        user_id = principal.user_id
    else:  # the access key outlived its user's row: it stands for nobody
        raise UnrecognizedClientException()
    return {"Arn": principal.arn, "UserId": user_id, "Account": principal.account_id}
