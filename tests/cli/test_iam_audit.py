"""``openkms iam`` changes leave audit records (issue 15, item 10), and need the root key.

- Every write command leaves exactly one record, CloudTrail's IAM shape (``eventSource`` ``iam.amazonaws.com``,
  the operator as the account's ``Root``), in the same transaction as the change: when the record cannot be
  written (a trigger makes every audit insert fail, as docs/tests.md A-3 does for the server) the command fails and
  nothing changes. Reads leave none; a refused change leaves one failure record (errorCode, errorMessage) and no
  change, as CloudTrail records a refused IAM call.
- No secret is recorded: CreateAccessKey's record names the access key id, never the secret.
- On a passphrase-sealed install every write needs the passphrase (the root key); without it, or with a wrong
  one, the command is refused (exit 1) and writes nothing. A key-file install reads its key file.
- ``openkms audit verify`` passes after CLI changes interleaved with a running server's traffic, and the
  records show in ``openkms audit query`` (by operation and by principal), on SQLite and PostgreSQL.

The CLI runs in this process (tests/cli/running.py); the server is a real ``openkms serve --dev``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from openkms import identity
from openkms.audit import events
from openkms.audit import scope as audit_scope
from openkms.cli.iam import CHANGES, COMMANDS
from openkms.clock import SystemClock
from openkms.eventnames import IAM_EVENT_NAMES
from openkms.operations import iam_admin, registry
from openkms.seal import keyfile
from openkms.seal.root_key import initialize_with_keyfile
from openkms.storage.factory import open_storage
from tests.audit_faults import install_audit_fault
from tests.cli.running import Run, openkms
from tests.e2e.server import ACCOUNT_ID, ServerProcess, free_port
from tests.pg_helpers import create_temp_database, drop_database

ACCOUNT = "111122223333"
OTHER = "444455556666"
PASSPHRASE = "iam audit test passphrase 42"
ENVS_TO_DROP = ("OPENKMS_UNSEAL_PASSPHRASE", "OPENKMS_INIT_PASSPHRASE", "OPENKMS_DATA_DIR", "OPENKMS_DATABASE_URL")
ROOT_ARN = f"arn:aws:iam::{ACCOUNT}:root"
POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]}'
READS = frozenset(name for name in COMMANDS if name.startswith(("list-", "get-")))
WRITES = frozenset(COMMANDS) - READS


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENVS_TO_DROP:
        monkeypatch.delenv(name, raising=False)


# ---- installs --------------------------------------------------------------------------------------------------


@dataclass
class Install:
    data_dir: Path
    url: str

    def iam(self, *args: str) -> Run:
        return openkms("iam", *args, "--data-dir", str(self.data_dir), "--database-url", self.url)

    def audit(self, *args: str) -> Run:
        return openkms("audit", *args, "--data-dir", str(self.data_dir), "--database-url", self.url)

    def records(self) -> list[dict[str, Any]]:
        """Every record of the trail, oldest first, each with its seq."""
        storage = open_storage(self.url)
        try:
            with storage.read() as tx:
                return [{"seq": row.seq, **json.loads(row.event)} for row in tx.audit_range(0, 1_000_000)]
        finally:
            storage.close()

    def texts(self) -> list[str]:
        storage = open_storage(self.url)
        try:
            with storage.read() as tx:
                return [row.event for row in tx.audit_range(0, 1_000_000)]
        finally:
            storage.close()

    def state(self) -> dict[str, Any]:
        """Everything an ``openkms iam`` write may change, and the trail's head."""
        storage = open_storage(self.url)
        try:
            with storage.read() as tx:
                users = tx.list_users(None)
                groups = tx.list_groups(None)
                return {
                    "accounts": tx.list_accounts(),
                    "users": [(u.account_id, u.user_name, u.user_id) for u in users],
                    "keys": [(k.access_key_id, k.user_name, k.status) for k in tx.list_access_keys(None, None)],
                    "user_policies": {u.user_name: tx.list_user_policies(u.account_id, u.user_name) for u in users},
                    "user_tags": {u.user_name: tx.list_user_tags(u.account_id, u.user_name) for u in users},
                    "groups": [(g.account_id, g.group_name, g.group_id) for g in groups],
                    "members": {g.group_name: tx.list_group_members(g.account_id, g.group_name) for g in groups},
                    "group_policies": {
                        g.group_name: tx.list_group_policies(g.account_id, g.group_name) for g in groups
                    },
                    "head": tx.audit_head().seq,
                }
        finally:
            storage.close()


def _keyfile_install(data_dir: Path, url: str) -> Install:
    """A key-file install (as ``serve --dev`` makes) with the account ACCOUNT and the user alice."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    storage = open_storage(url)
    try:
        storage.migrate()
        clock = SystemClock()
        initialize_with_keyfile(storage, data_dir / keyfile.KEYFILE_NAME, clock)
        identity.ensure_account(storage, ACCOUNT, clock)
        identity.create_user(storage, ACCOUNT, "alice", clock)
    finally:
        storage.close()
    return Install(data_dir, url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def install(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Install]:
    if request.param == "sqlite":
        yield _keyfile_install(tmp_path / "data", f"sqlite:///{tmp_path / 'data' / 'openkms.db'}")
        return
    url = create_temp_database()
    try:
        yield _keyfile_install(tmp_path / "data", url)
    finally:
        drop_database(url)


def ok(run: Run) -> str:
    assert run.code == 0, run
    assert run.err == "", run.err
    return run.out


def refused(run: Run, *fragments: str) -> None:
    assert run.code == 1, run
    assert run.out == "", run
    assert run.err.startswith("openkms: ") and run.err.count("\n") == 1, run.err
    assert "Traceback" not in run.err
    for fragment in fragments:
        assert fragment in run.err, run.err


def verified(run: Run) -> None:
    """``openkms audit verify --json`` found the trail intact (its stderr notes that no key was pinned)."""
    assert run.code == 0, run
    report = json.loads(run.out)
    assert report["ok"] is True and report["problems"] == [], report


# ---- every write, in an order in which each succeeds -------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    command: str
    args: tuple[str, ...]
    event_name: str
    request: dict[str, Any]  # the record's requestParameters, exactly
    account: str = ACCOUNT


def _steps() -> list[Step]:
    """Every write command once, in an order in which each succeeds (``{key}``: the access key
    create-access-key made)."""
    user, group, policy = ("--user-name", "bob"), ("--group-name", "ops"), ("--policy-name", "p")
    on_account = ("--account-id", ACCOUNT)
    return [
        Step("create-account", ("--account-id", OTHER), "CreateAccount", {"accountId": OTHER}, OTHER),
        Step("create-user", (*on_account, *user), "CreateUser", {"userName": "bob"}),
        Step("create-access-key", (*on_account, *user), "CreateAccessKey", {"userName": "bob"}),
        Step(
            "update-access-key",
            ("--access-key-id", "{key}", "--status", "Inactive"),
            "UpdateAccessKey",
            {"accessKeyId": "{key}", "status": "Inactive"},
        ),
        Step("delete-access-key", ("--access-key-id", "{key}"), "DeleteAccessKey", {"accessKeyId": "{key}"}),
        Step(
            "put-user-policy",
            (*on_account, *user, *policy, "--policy-document", POLICY),
            "PutUserPolicy",
            {"userName": "bob", "policyName": "p", "policyDocument": POLICY},
        ),
        Step(
            "delete-user-policy",
            (*on_account, *user, *policy),
            "DeleteUserPolicy",
            {"userName": "bob", "policyName": "p"},
        ),
        Step(
            "tag-user",
            (*on_account, *user, "--tags", "Key=env,Value=prod", "Key=team,Value="),
            "TagUser",
            {"userName": "bob", "tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": ""}]},
        ),
        Step(
            "untag-user",
            (*on_account, *user, "--tag-keys", "env"),
            "UntagUser",
            {"userName": "bob", "tagKeys": ["env"]},
        ),
        Step("create-group", (*on_account, *group), "CreateGroup", {"groupName": "ops"}),
        Step(
            "add-user-to-group", (*on_account, *user, *group), "AddUserToGroup", {"userName": "bob", "groupName": "ops"}
        ),
        Step(
            "put-group-policy",
            (*on_account, *group, *policy, "--policy-document", POLICY),
            "PutGroupPolicy",
            {"groupName": "ops", "policyName": "p", "policyDocument": POLICY},
        ),
        Step(
            "delete-group-policy",
            (*on_account, *group, *policy),
            "DeleteGroupPolicy",
            {"groupName": "ops", "policyName": "p"},
        ),
        Step(
            "remove-user-from-group",
            (*on_account, *user, *group),
            "RemoveUserFromGroup",
            {"userName": "bob", "groupName": "ops"},
        ),
        Step("delete-group", (*on_account, *group), "DeleteGroup", {"groupName": "ops"}),
        Step("delete-user", (*on_account, *user), "DeleteUser", {"userName": "bob"}),
    ]


def _fill(value: Any, key_id: str) -> Any:
    if isinstance(value, str):
        return value.replace("{key}", key_id)
    if isinstance(value, dict):
        return {k: _fill(v, key_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, key_id) for v in value]
    return value


def test_the_steps_cover_every_write_command() -> None:
    """A write command added later without a record fails here first."""
    assert {step.command for step in _steps()} == WRITES
    assert len(WRITES) == 16
    assert set(CHANGES) == WRITES and set(CHANGES.values()) == IAM_EVENT_NAMES
    for name in IAM_EVENT_NAMES:  # each an IAM operation the runner runs
        admin = registry.admin_operation_for(name)
        assert admin is not None and admin.event_source == "iam.amazonaws.com"


def test_every_write_leaves_exactly_one_iam_record(install: Install) -> None:
    created: dict[str, str] = {}
    for step in _steps():
        before = install.state()["head"]
        args = [_fill(a, created.get("AccessKeyId", "")) for a in step.args]
        out = ok(install.iam(step.command, *args, "--json"))
        if step.command == "create-access-key":
            created = json.loads(out)
        new = [r for r in install.records() if r["seq"] > before]
        assert len(new) == 1, (step.command, new)
        event = new[0]
        assert event["eventSource"] == "iam.amazonaws.com"
        assert event["eventName"] == step.event_name
        assert event["requestParameters"] == _fill(step.request, created.get("AccessKeyId", ""))
        assert event["readOnly"] is False and event["eventType"] == "AwsApiCall"
        assert event["awsRegion"] == "us-east-1" and event["recipientAccountId"] == step.account
        assert event["userAgent"].startswith("openkms-cli/")
        operator = event["userIdentity"]
        assert operator["type"] == "Root" and operator["arn"] == f"arn:aws:iam::{step.account}:root"
        assert operator["accountId"] == step.account and operator["userName"]
        assert "errorCode" not in event
    # What the changes answered: created things by their ids, never a secret.
    by_name = {r["eventName"]: r for r in install.records()}
    user = by_name["CreateUser"]["responseElements"]["user"]
    assert user["userName"] == "bob" and user["userId"].startswith("AIDA")
    assert user["arn"] == f"arn:aws:iam::{ACCOUNT}:user/bob"
    group = by_name["CreateGroup"]["responseElements"]["group"]
    assert group["groupName"] == "ops" and group["groupId"].startswith("AGPA")
    access_key = by_name["CreateAccessKey"]["responseElements"]["accessKey"]
    assert access_key == {
        "accessKeyId": created["AccessKeyId"],
        "status": "Active",
        "userName": "bob",
        "createDate": access_key["createDate"],
    }
    assert by_name["CreateAccount"]["responseElements"] == {"accountId": OTHER}
    assert by_name["DeleteUser"]["responseElements"] is None


def test_the_secret_access_key_is_never_recorded(install: Install) -> None:
    created = json.loads(
        ok(install.iam("create-access-key", "--user-name", "alice", "--account-id", ACCOUNT, "--json"))
    )
    secret = created["SecretAccessKey"]
    texts = install.texts()
    assert len(texts) == 1
    assert not any(secret in text for text in texts)
    assert "secretAccessKey" not in texts[0] and "SecretAccessKey" not in texts[0]


def test_reads_and_refused_changes_leave_no_record(install: Install) -> None:
    """Reads leave no record; each refused change leaves exactly one failure record and changes nothing (the
    changes run as operations since issue 16 item 5: CloudTrail records refused IAM calls too)."""
    for args in (
        ["list-users"],
        ["list-access-keys"],
        ["list-groups"],
        ["list-user-policies", "--user-name", "alice", "--account-id", ACCOUNT],
        ["list-user-tags", "--user-name", "alice", "--account-id", ACCOUNT],
        ["list-groups-for-user", "--user-name", "alice", "--account-id", ACCOUNT],
    ):
        ok(install.iam(*args))
    assert install.records() == []
    before = install.state()
    refused(install.iam("create-user", "--user-name", "alice", "--account-id", ACCOUNT), "already exists")
    refused(install.iam("delete-user", "--user-name", "nobody", "--account-id", ACCOUNT), "no user nobody")
    refused(install.iam("put-user-policy", "--user-name", "alice", "--account-id", ACCOUNT, "--policy-name", "p",
                        "--policy-document", "{}"), "malformed")  # fmt: skip
    assert {k: v for k, v in install.state().items() if k != "head"} == {k: v for k, v in before.items() if k != "head"}
    failures = [(r["eventName"], r.get("errorCode"), r["requestParameters"]) for r in install.records()]
    assert failures == [
        ("CreateUser", "AlreadyExistsException", {"userName": "alice"}),
        ("DeleteUser", "NotFoundException", {"userName": "nobody"}),
        ("PutUserPolicy", "ValidationException", {"userName": "alice", "policyName": "p", "policyDocument": "{}"}),
    ]
    for record in install.records():
        assert record["errorMessage"] and record["responseElements"] is None
        assert record["userIdentity"]["type"] == "Root" and record["eventSource"] == "iam.amazonaws.com"


def test_the_record_shows_in_audit_query(install: Install) -> None:
    ok(install.iam("create-user", "--user-name", "carol", "--account-id", ACCOUNT))
    listed = json.loads(ok(install.audit("query", "--json")))
    assert [(e["eventSource"], e["eventName"]) for e in listed] == [("iam.amazonaws.com", "CreateUser")]
    by_operation = json.loads(ok(install.audit("query", "--operation", "CreateUser", "--json")))
    assert [e["requestParameters"] for e in by_operation] == [{"userName": "carol"}]
    by_principal = json.loads(ok(install.audit("query", "--principal", ROOT_ARN, "--json")))
    assert len(by_principal) == 1
    table = ok(install.audit("query"))
    assert "CreateUser" in table and ROOT_ARN in table


def test_a_change_takes_one_write_transaction_and_one_record(install: Install) -> None:
    """A change that opened a second write transaction would need a second record: it fails loudly (the rule
    audit/scope.py enforces for every operation, the IAM ones included), and the second transaction commits
    nothing."""
    storage = open_storage(install.url)
    operator = iam_admin.operator(ACCOUNT, "op")
    call = events.Call("r-1", 1.0, "host", "openkms-cli/test", "us-east-1", "TagUser", operator, None,
                       {"userName": "alice"}, event_source=iam_admin.EVENT_SOURCE)  # fmt: skip
    pending, token = audit_scope.begin(call)
    try:
        with storage.committing_with(audit_scope.before_commit):
            with storage.transaction() as tx:
                tx.put_user_tags(ACCOUNT, "alice", {"first": "1"})
            assert pending.written
            with pytest.raises(RuntimeError, match="second write transaction"), storage.transaction() as tx:
                tx.put_user_tags(ACCOUNT, "alice", {"second": "2"})
    finally:
        audit_scope.end(token)
        storage.close()
    assert install.state()["user_tags"] == {"alice": {"first": "1"}}
    assert [(r["eventName"], r["userIdentity"]["type"]) for r in install.records()] == [("TagUser", "Root")]


# ---- the audit insert fails: the change fails with it ----------------------------------------------------------


def test_a_failing_audit_insert_fails_the_change_and_changes_nothing(install: Install) -> None:
    set_fault = install_audit_fault(install.url)
    created: dict[str, str] = {}
    for step in _steps():
        args = [_fill(a, created.get("AccessKeyId", "")) for a in step.args]
        before = install.state()
        set_fault(True)
        failed = install.iam(step.command, *args, "--json")
        set_fault(False)
        refused(failed, "nothing was changed", "audit record")
        assert install.state() == before, step.command
        out = ok(install.iam(step.command, *args, "--json"))  # the fault cleared: the same change now works
        if step.command == "create-access-key":
            created = json.loads(out)
    assert [r["eventName"] for r in install.records()] == [step.event_name for step in _steps()]
    verified(install.audit("verify", "--json"))


# ---- who may change identities: the root key -------------------------------------------------------------------


@pytest.fixture
def sealed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Install, Path]:
    """A passphrase-sealed install made by ``openkms init``, and a file holding its passphrase."""
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text(PASSPHRASE)
    passphrase_file.chmod(0o600)
    data_dir = tmp_path / "data"
    url = f"sqlite:///{data_dir / 'openkms.db'}"
    init = openkms("init", "--data-dir", str(data_dir), "--database-url", url, "--passphrase-file",
                   str(passphrase_file), "--account-id", ACCOUNT, "--json")  # fmt: skip
    assert init.code == 0, init
    return Install(data_dir, url), passphrase_file


def test_on_a_passphrase_install_every_write_needs_the_passphrase(sealed: tuple[Install, Path], tmp_path: Path) -> None:
    install, passphrase_file = sealed
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase at all")
    wrong.chmod(0o600)
    created: dict[str, str] = {}
    for step in _steps():
        args = [_fill(a, created.get("AccessKeyId", "")) for a in step.args]
        before = install.state()
        refused(install.iam(step.command, *args), "no passphrase")
        refused(install.iam(step.command, *args, "--passphrase-file", str(wrong)), "does not open")
        assert install.state() == before, step.command
        out = ok(install.iam(step.command, *args, "--passphrase-file", str(passphrase_file), "--json"))
        if step.command == "create-access-key":
            created = json.loads(out)
    assert [r["eventName"] for r in install.records()] == [step.event_name for step in _steps()]


def test_on_a_passphrase_install_reads_need_no_passphrase(sealed: tuple[Install, Path]) -> None:
    install, _ = sealed
    users = json.loads(ok(install.iam("list-users", "--json")))
    assert [u["UserName"] for u in users] == ["admin"]
    ok(install.iam("list-access-keys"))
    ok(install.iam("get-user-policy", "--user-name", "admin", "--policy-name", "AdministratorAccess"))


def test_the_passphrase_may_come_from_the_environment(
    sealed: tuple[Install, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    install, _ = sealed
    monkeypatch.setenv("OPENKMS_UNSEAL_PASSPHRASE", PASSPHRASE)
    ok(install.iam("create-user", "--user-name", "dora"))
    assert [r["eventName"] for r in install.records()] == ["CreateUser"]


def test_a_key_file_install_without_its_key_file_is_refused(install: Install) -> None:
    (install.data_dir / keyfile.KEYFILE_NAME).rename(install.data_dir / "moved-away")
    before = install.state()
    refused(install.iam("create-user", "--user-name", "erin", "--account-id", ACCOUNT))
    assert install.state() == before


# ---- interleaved with a running server's traffic: the chain still verifies --------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    data_dir = tmp_path / "data"
    url = f"sqlite:///{data_dir / 'openkms.db'}" if request.param == "sqlite" else create_temp_database()
    process = ServerProcess(data_dir, url, free_port(), extra_args=["--audit-digest-interval", "1"])
    try:
        yield process.start()
    finally:
        process.stop()
        if request.param != "sqlite":
            drop_database(url)


@pytest.mark.timeout(300)
def test_verify_passes_after_cli_changes_interleaved_with_server_traffic(server: ServerProcess) -> None:
    install = Install(server.data_dir, server.database_url)
    kms: Any = server.client()
    key_id = kms.create_key(Description="iam audit")["KeyMetadata"]["KeyId"]
    stop = threading.Event()
    calls: list[str] = []
    errors: list[BaseException] = []

    def traffic() -> None:
        client: Any = server.client()
        n = 0
        while not stop.is_set():
            n += 1
            try:
                if n % 5 == 0:
                    client.tag_resource(KeyId=key_id, Tags=[{"TagKey": f"t{n % 7}", "TagValue": str(n)}])
                    calls.append("TagResource")
                else:
                    client.encrypt(KeyId=key_id, Plaintext=b"x")
                    calls.append("Encrypt")
            except (ClientError, OSError) as exc:  # pragma: no cover - reported below
                errors.append(exc)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        for round_ in range(3):
            user = f"u{round_}"
            on = ("--account-id", ACCOUNT_ID, "--user-name", user)
            ok(install.iam("create-user", *on))
            ok(install.iam("put-user-policy", *on, "--policy-name", "p", "--policy-document", POLICY))
            ok(install.iam("tag-user", *on, "--tags", "Key=round,Value=" + str(round_)))
            key = json.loads(ok(install.iam("create-access-key", *on, "--json")))["AccessKeyId"]
            ok(install.iam("update-access-key", "--access-key-id", key, "--status", "Inactive"))
            ok(install.iam("delete-user", *on))
    finally:
        stop.set()
        worker.join(60)
    assert errors == []
    assert calls.count("Encrypt") > 0 and calls.count("TagResource") > 0
    records = install.records()
    iam_names = [r["eventName"] for r in records if r["eventSource"] == "iam.amazonaws.com"]
    expected = ["CreateUser", "PutUserPolicy", "TagUser", "CreateAccessKey", "UpdateAccessKey", "DeleteUser"]
    assert iam_names == expected * 3
    kms_names = [r["eventName"] for r in records if r["eventSource"] == "kms.amazonaws.com"]
    assert kms_names.count("Encrypt") == calls.count("Encrypt")
    # Interleaved: some server record lies between the first and the last CLI change.
    iam_seqs = [r["seq"] for r in records if r["eventSource"] == "iam.amazonaws.com"]
    assert any(iam_seqs[0] < r["seq"] < iam_seqs[-1] for r in records if r["eventSource"] == "kms.amazonaws.com")
    verified(install.audit("verify", "--json"))
    found = json.loads(ok(install.audit("query", "--operation", "DeleteUser", "--json")))
    assert [e["requestParameters"]["userName"] for e in found] == ["u2", "u1", "u0"]
