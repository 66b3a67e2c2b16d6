"""Records of identity changes made with ``openkms iam``, as CloudTrail records IAM's (``iam.amazonaws.com``).

An identity change is a privilege change, so it belongs in the same tamper-evident trail as the key changes
it enables, and must be as durable as they are: :class:`OperatorChange` is installed as the storage's
``before_commit`` hook for one command and appends the record to the change's own write transaction (after
the chain's locked head, :func:`openkms.audit.log.append`). The change and its record commit together or not
at all; a change that fails writes neither.

Who made the change is the operator at the command line, not an IAM user: ``userIdentity`` is the account's
``Root`` (the CLI needs no IAM permission; it needs the root key, cli/iam.py) with ``userName`` the
operating-system user that ran the command; ``sourceIPAddress`` is the host's name (as the trail already
names a service there for its own events) and ``userAgent`` ``openkms-cli/<version>``. Both come from the
operating system, not from authentication: they say where to look, the root key said who may. IAM is a
global service, so CloudTrail records its events in ``us-east-1``; so does this.

No secret is recorded: ``requestParameters`` are the names the command was given (a policy document is not
secret, and AWS records it), and CreateAccessKey's ``responseElements`` carry the access key id, never its
secret access key.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import openkms
from openkms import ids
from openkms.audit import events
from openkms.audit import log as audit_log
from openkms.clock import Clock
from openkms.eventnames import IAM_EVENT_NAMES as EVENT_NAMES  # every eventName `openkms iam` records
from openkms.storage.audit import AuditRecord
from openkms.storage.ports import Transaction

IAM_SOURCE = "iam.amazonaws.com"
IAM_REGION = "us-east-1"  # where CloudTrail records IAM's global events
USER_AGENT = f"openkms-cli/{openkms.__version__}"

# What the record answers: built inside the change's transaction, so it reads what the change wrote (the new
# user's unique id, the stored name); None for changes CloudTrail records no response of.
Response = Callable[[Transaction], Mapping[str, Any] | None]


@dataclass(frozen=True, slots=True)
class Operator:
    """Who ran the command, as the operating system tells it."""

    user: str
    host: str

    @classmethod
    def current(cls) -> Operator:
        try:
            user = getpass.getuser()
        except (OSError, KeyError):  # no LOGNAME/USER and no passwd entry (some containers)
            user = "unknown"
        return cls(user or "unknown", socket.gethostname() or "localhost")


def operator_event(
    operator: Operator,
    event_name: str,
    account_id: str,
    at: float,
    request_parameters: Mapping[str, Any],
    response_elements: Mapping[str, Any] | None,
) -> AuditRecord:
    """The record of one successful change by ``operator`` in ``account_id``."""
    if event_name not in EVENT_NAMES:
        raise ValueError(f"{event_name} is not an IAM event openkms records")
    root = ids.root_arn(account_id)
    event = events.envelope(
        user_identity={
            "type": "Root",
            "principalId": account_id,
            "arn": root,
            "accountId": account_id,
            "userName": operator.user,
        },
        at=at,
        source=IAM_SOURCE,
        name=event_name,
        region=IAM_REGION,
        source_ip=operator.host,
        user_agent=USER_AGENT,
        request_id=ids.new_request_id(at),
        read_only=False,
        event_type="AwsApiCall",
        recipient_account_id=account_id,
        request_parameters=dict(request_parameters),
        response_elements=dict(response_elements) if response_elements is not None else None,
    )
    return events.finish(event, at)


class OperatorChange:
    """The record of one ``openkms iam`` change, as the storage's ``before_commit`` hook.

    The command's change must take exactly one write transaction (every function of openkms.identity does);
    a second one would need a second record, so it fails loudly, as audit/scope.py does for API calls.
    ``response`` may be set before the change runs.
    """

    __slots__ = (
        "account_id",
        "attempted",
        "clock",
        "event_name",
        "operator",
        "request_parameters",
        "response",
        "written",
    )

    def __init__(
        self,
        operator: Operator,
        event_name: str,
        account_id: str,
        request_parameters: Mapping[str, Any],
        clock: Clock,
        response: Response | None = None,
    ) -> None:
        if event_name not in EVENT_NAMES:
            raise ValueError(f"{event_name} is not an IAM event openkms records")
        self.operator = operator
        self.event_name = event_name
        self.account_id = account_id
        self.request_parameters = request_parameters
        self.clock = clock
        self.response = response
        self.attempted = False  # the record was appended to a transaction (that may still fail to commit)
        self.written = False  # the change and its record committed

    def __call__(self, tx: Transaction) -> Callable[[], None]:
        if self.attempted:
            raise RuntimeError(f"{self.event_name} opened a second write transaction; one record per change")
        self.attempted = True
        response = self.response(tx) if self.response is not None else None
        event = operator_event(
            self.operator, self.event_name, self.account_id, self.clock.now(), self.request_parameters, response
        )
        audit_log.append(tx, [event])

        def committed() -> None:
            self.written = True

        return committed
