"""docs/tests.md P-2 and P-3: a revocation holds from the very next request, on every worker and on every node.

Each loop grants, proves the grant works, revokes (RevokeGrant, RetireGrant, PutKeyPolicy or DisableKey, in turn),
and then sends requests on fresh connections (the kernel spreads them over the workers' SO_REUSEPORT sockets) and
on kept-alive connections to every worker or node. Not one of them may be allowed after the revocation's 200.

P-2: one server with 2 workers. P-3: two servers (nodes) sharing one PostgreSQL database; the revocation goes to
one node and the checks to both. The loop count is OPENKMS_REVOCATION_LOOPS (default 1,000, as docs/tests.md asks).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from openkms.seal import keyfile
from tests.e2e.principals import User, make_user
from tests.e2e.server import ACCOUNT_ID, ServerProcess, free_port
from tests.pg_helpers import create_temp_database, drop_database, postgres_or_skip

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LOOPS = int(os.environ.get("OPENKMS_REVOCATION_LOOPS", "1000"))
DEFAULT_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}, "Action": "kms:*", "Resource": "*"}
    ],
}


def _allowed(kms: Any, key_arn: str) -> bool:
    try:
        kms.encrypt(KeyId=key_arn, Plaintext=b"p")
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        assert code in ("AccessDeniedException", "DisabledException"), exc.response
        return False
    return True


def _policy_naming(user: User) -> str:
    named = {"Effect": "Allow", "Principal": {"AWS": user.arn}, "Action": "kms:Encrypt", "Resource": "*"}
    return json.dumps({**DEFAULT_POLICY, "Statement": [*DEFAULT_POLICY["Statement"], named]})


def revocation_loops(admin: Any, grantee: User, checkers: list[Any], fresh: list[Any]) -> dict[str, int]:
    """Run the loops; ``checkers`` are the grantee's kept-alive clients (one per worker/node), ``fresh`` makes a
    client on a new connection per node. Returns counts per revocation kind; fails on any allowed request."""
    key = admin.create_key(Description="revocation loops")["KeyMetadata"]
    arn = key["Arn"]
    counts: dict[str, int] = {}
    kinds = ["RevokeGrant", "RetireGrant", "PutKeyPolicy", "DisableKey"]
    for loop in range(LOOPS):
        kind = kinds[loop % len(kinds)]
        if kind in ("RevokeGrant", "RetireGrant"):
            grant = admin.create_grant(
                KeyId=key["KeyId"], GranteePrincipal=grantee.arn, Operations=["Encrypt", "RetireGrant"]
            )
            assert _allowed(checkers[loop % len(checkers)], arn), f"loop {loop}: the grant did not work"
            if kind == "RevokeGrant":
                admin.revoke_grant(KeyId=key["KeyId"], GrantId=grant["GrantId"])
            else:
                grantee.kms.retire_grant(GrantToken=grant["GrantToken"])
        elif kind == "PutKeyPolicy":
            admin.put_key_policy(KeyId=key["KeyId"], Policy=_policy_naming(grantee))
            assert _allowed(checkers[loop % len(checkers)], arn), f"loop {loop}: the policy did not work"
            admin.put_key_policy(KeyId=key["KeyId"], Policy=json.dumps(DEFAULT_POLICY))
        else:
            admin.put_key_policy(KeyId=key["KeyId"], Policy=_policy_naming(grantee))
            assert _allowed(checkers[loop % len(checkers)], arn), f"loop {loop}: the policy did not work"
            admin.disable_key(KeyId=key["KeyId"])
        for client in [*checkers, *(make() for make in fresh)]:
            assert not _allowed(client, arn), f"loop {loop}: allowed after {kind} answered 200"
        if kind == "DisableKey":
            admin.put_key_policy(KeyId=key["KeyId"], Policy=json.dumps(DEFAULT_POLICY))
            admin.enable_key(KeyId=key["KeyId"])
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def _kept_alive(server: ServerProcess, user: User, count: int) -> list[Any]:
    """``count`` clients, each with its own kept-alive connection once used."""
    return [server.client(*user.credentials) for _ in range(count)]


def test_p2_revocation_across_workers(server: ServerProcess, kms: Any) -> None:
    grantee = make_user(server, "revoked")
    checkers = _kept_alive(server, grantee, 4)  # 4 kept-alive connections: with 2 workers, both are reached
    counts = revocation_loops(kms, grantee, checkers, [lambda: server.client(*grantee.credentials)])
    print(f"P-2: {LOOPS} loops over {server.workers} workers, 0 allowed after revocation: {counts}")


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    postgres_or_skip()
    url = create_temp_database()
    base = tmp_path_factory.mktemp("p3")
    first = ServerProcess(base / "node1", url, free_port()).start()
    second_dir = base / "node2"
    second_dir.mkdir()
    # Both nodes open the same root of trust: dev mode's key file travels with the shared database.
    shutil.copy(Path(first.data_dir) / keyfile.KEYFILE_NAME, second_dir / keyfile.KEYFILE_NAME)
    second = ServerProcess(second_dir, url, free_port()).start()
    yield first, second
    second.stop()
    first.stop()
    drop_database(url)


@pytest.mark.postgres
def test_p3_revocation_across_nodes(two_nodes: tuple[ServerProcess, ServerProcess]) -> None:
    first, second = two_nodes
    admin = first.client()
    grantee = make_user(first, "revoked")
    checkers = [*_kept_alive(first, grantee, 2), *_kept_alive(second, grantee, 2)]
    fresh = [lambda: first.client(*grantee.credentials), lambda: second.client(*grantee.credentials)]
    counts = revocation_loops(admin, grantee, checkers, fresh)
    print(f"P-3: {LOOPS} loops over 2 nodes sharing PostgreSQL, 0 allowed after revocation: {counts}")
