"""The first administrator of an install: what ``openkms init`` and ``openkms serve --dev`` set up with the seal
and the schema, before any caller exists.

Install setup, not a change a caller could make, so it runs here, below the command line, and leaves no audit
record (as the schema's migration leaves none): on ``init`` there is nobody to call with yet, and ``serve --dev``
makes sure, before it answers anything, that a developer's install still has its administrator. Every later
identity change is an IAM operation through the operation runner (operations/iam_admin.py, ``openkms iam``).
"""

from __future__ import annotations

import hmac

from openkms import identity
from openkms.clock import Clock
from openkms.storage.ports import Storage

ADMIN_USER = "admin"


class BootstrapError(Exception):
    """The install's administrator cannot be set up as asked (a user-facing message)."""


def first_administrator(storage: Storage, root_key: bytes, account_id: str, clock: Clock) -> identity.NewAccessKey:
    """``openkms init``: the account, its administrator with ``AdministratorAccess``, and an access key."""
    identity.ensure_account(storage, account_id, clock)
    identity.create_user(storage, account_id, ADMIN_USER, clock)
    identity.ensure_administrator_policy(storage, account_id, ADMIN_USER)
    return identity.create_access_key(storage, root_key, account_id, ADMIN_USER, clock)


def dev_administrator(
    storage: Storage,
    root_key: bytes,
    clock: Clock,
    account_id: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> tuple[str, identity.NewAccessKey]:
    """``serve --dev``: the administrator, created on first start; pinned credentials are added if missing.

    Every start also makes sure it still holds ``AdministratorAccess``: policy evaluation denies what no
    policy allows, and a dev server whose administrator can do nothing is of no use.
    """
    with storage.read() as tx:
        admins = [u for u in tx.list_users(None) if u.user_name == ADMIN_USER]
    if admins:
        if account_id and account_id != admins[0].account_id:
            raise BootstrapError(f"this data directory's dev account is {admins[0].account_id}, not {account_id}")
        account_id = admins[0].account_id
    else:
        account_id = account_id or identity.new_account_id()
        identity.ensure_account(storage, account_id, clock)
        identity.create_user(storage, account_id, ADMIN_USER, clock)
    identity.ensure_administrator_policy(storage, account_id, ADMIN_USER)
    with storage.read() as tx:
        pinned = tx.get_access_key(access_key_id) if access_key_id else None
        existing = [k for k in tx.list_access_keys(account_id, ADMIN_USER) if k.status == identity.ACTIVE]
    if access_key_id and secret_access_key:
        if pinned is None:
            return account_id, identity.create_access_key(
                storage,
                root_key,
                account_id,
                ADMIN_USER,
                clock,
                access_key_id=access_key_id,
                secret_access_key=secret_access_key,
            )
        if not hmac.compare_digest(identity.reveal_secret(root_key, pinned), secret_access_key):
            raise BootstrapError(f"access key {access_key_id} already exists with another secret")
        return account_id, identity.NewAccessKey(pinned.access_key_id, secret_access_key, account_id, ADMIN_USER)
    if existing:
        first = existing[0]
        return account_id, identity.NewAccessKey(
            first.access_key_id, identity.reveal_secret(root_key, first), account_id, ADMIN_USER
        )
    return account_id, identity.create_access_key(storage, root_key, account_id, ADMIN_USER, clock)
