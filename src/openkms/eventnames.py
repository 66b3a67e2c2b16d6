"""The eventNames the audit trail holds besides the KMS API's and the admin operations' own names, and the
IAM operations' names (admin operations whose records the audit layer marks as changes).

The audit layer writes records under these names and audit queries (an operation, and ``openkms audit query``)
accept them, so both sides import them from here, the lowest layer, and operations never import audit.
"""

from __future__ import annotations

CONSOLE_LOGIN = "ConsoleLogin"  # the console's sign-in (audit/events.py console_login)
UNKNOWN = "Unknown"  # a request that named no operation
UNSEAL = "Unseal"  # an unseal attempt (audit/server_events.py)
UNAUTHENTICATED_SUMMARY = "UnauthenticatedRequestsSummary"  # counted unauthenticated calls (server_events.py)

# The IAM operations (operations/iam_admin.py, admin operations of iam.amazonaws.com), every one a change
# (readOnly false in its record); `openkms iam` runs one for each of its write commands.
IAM_EVENT_NAMES = frozenset(
    {
        "CreateAccount",  # Organizations' name for it at AWS; recorded here with IAM's other changes
        "CreateUser",
        "DeleteUser",
        "CreateAccessKey",
        "UpdateAccessKey",
        "DeleteAccessKey",
        "PutUserPolicy",
        "DeleteUserPolicy",
        "CreateGroup",
        "DeleteGroup",
        "AddUserToGroup",
        "RemoveUserFromGroup",
        "PutGroupPolicy",
        "DeleteGroupPolicy",
        "TagUser",
        "UntagUser",
    }
)

# The STS actions served on the same endpoint (sts/operations.py registers only these; eventSource
# sts.amazonaws.com). The registry lives above operations, so audit queries learn the names from here.
STS_EVENT_NAMES = frozenset({"GetCallerIdentity"})

# What the trail can hold that no registered operation names.
OUTSIDE_OPERATIONS = frozenset({CONSOLE_LOGIN, UNKNOWN, UNSEAL, UNAUTHENTICATED_SUMMARY}) | STS_EVENT_NAMES
