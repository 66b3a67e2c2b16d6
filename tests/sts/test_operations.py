"""STS's operation registry: dispatch on (Action, Version) as AWS does, and GetCallerIdentity's answer for
each kind of principal openkms has."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from openkms import eventnames, ids
from openkms.auth.credentials import Authenticator
from openkms.context import Principal
from openkms.errors import UnrecognizedClientException
from openkms.operations import registry
from openkms.sts import operations
from openkms.sts.protocol import InvalidAction, MissingAction
from tests.inprocess import InProcessKMS

ACCOUNT = "111122223333"


@pytest.fixture
def kms(tmp_path: Path) -> Iterator[InProcessKMS]:
    app = InProcessKMS(tmp_path)
    yield app
    app.close()


def _context(kms: InProcessKMS, principal: Principal) -> operations.STSContext:
    return operations.STSContext("req", principal, "us-east-1", kms.clock.now(), kms.services)


def test_get_caller_identity_is_served_for_2011_06_15() -> None:
    found = operations.resolve("GetCallerIdentity", "2011-06-15")
    assert found.action == "GetCallerIdentity"
    assert operations.known("GetCallerIdentity") == "GetCallerIdentity"
    assert operations.known("AssumeRole") is None and operations.known(None) is None


def test_no_action_is_missing_action() -> None:
    with pytest.raises(MissingAction, match="Missing Action"):
        operations.resolve(None, "2011-06-15")


@pytest.mark.parametrize(
    ("action", "version", "message"),
    [
        ("AssumeRole", "2011-06-15", "Could not find operation AssumeRole for version 2011-06-15"),
        ("getcalleridentity", "2011-06-15", "Could not find operation getcalleridentity for version 2011-06-15"),
        ("", "2011-06-15", "Could not find operation  for version 2011-06-15"),
        ("GetCallerIdentity", "2000-01-01", "Could not find operation GetCallerIdentity for version 2000-01-01"),
        ("GetCallerIdentity", "", "Could not find operation GetCallerIdentity for version "),
        ("GetCallerIdentity", None, "Could not find operation GetCallerIdentity for version NO_VERSION_SPECIFIED"),
    ],
)
def test_dispatch_is_on_action_and_version(action: str, version: str | None, message: str) -> None:
    with pytest.raises(InvalidAction) as caught:
        operations.resolve(action, version)
    assert caught.value.message == message


def test_a_user_is_its_arn_and_unique_id(kms: InProcessKMS) -> None:
    principal = Authenticator(kms.storage, kms.services.keyring).principal_of(kms.credentials.access_key)
    answer = operations.get_caller_identity(_context(kms, principal), {})
    assert answer == {"Arn": ids.user_arn(ACCOUNT, "admin"), "UserId": principal.user_id, "Account": ACCOUNT}
    assert principal.user_id.startswith("AIDA")
    assert list(answer) == ["Arn", "UserId", "Account"]  # AWS's order in the XML


def test_the_account_root_has_the_account_id_as_user_id(kms: InProcessKMS) -> None:
    root = Principal(ACCOUNT, ids.root_arn(ACCOUNT), "", "AKIAROOTEXAMPLE00001")
    answer = operations.get_caller_identity(_context(kms, root), {})
    assert answer == {"Arn": f"arn:aws:iam::{ACCOUNT}:root", "UserId": ACCOUNT, "Account": ACCOUNT}


def test_a_key_whose_user_is_gone_stands_for_nobody(kms: InProcessKMS) -> None:
    orphan = Principal(ACCOUNT, ids.user_arn(ACCOUNT, "gone"), "gone", "AKIAORPHANEXAMPLE001", user_id="")
    with pytest.raises(UnrecognizedClientException):
        operations.get_caller_identity(_context(kms, orphan), {})


def test_every_sts_action_served_is_a_name_audit_queries_accept() -> None:
    served = {action for action in eventnames.STS_EVENT_NAMES if operations.known(action) is not None}
    assert served == set(eventnames.STS_EVENT_NAMES) and "GetCallerIdentity" in served
    assert served <= registry.recorded_event_names()
    with pytest.raises(RuntimeError, match="STS_EVENT_NAMES"):
        operations.operation("AssumeRole")
