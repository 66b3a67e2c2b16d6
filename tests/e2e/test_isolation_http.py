"""Accounts and regions are walls: a principal sees and uses only its own account's keys in the region it signs for.

The second account, its user and access key are made with the ``openkms iam`` CLI against the running server's
data, as an operator would. Expected errors and messages are AWS's: another account's key by ARN is
AccessDeniedException ("... because no resource-based policy allows the kms:<Action> action"); a bare key id is
looked up in the caller's own account and region, so it is NotFoundException.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.server import ACCOUNT_ID, REGION, ServerProcess

pytestmark = pytest.mark.e2e

OTHER_ACCOUNT = "444455556666"
OTHER_REGION = "eu-west-1"


@dataclass(frozen=True)
class Principal:
    user_arn: str
    kms: Any


def _cli(server: ServerProcess, *args: str) -> str:
    result = server.openkms("iam", *args)
    assert result.returncode == 0, f"openkms iam {' '.join(args)} failed: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def other(server: ServerProcess) -> Principal:
    """A user of account 444455556666 allowed kms:* by its identity policy, with an access key, made through the
    admin CLI."""
    created = server.openkms("iam", "create-account", "--account-id", OTHER_ACCOUNT)
    assert created.returncode == 0 or "exist" in created.stderr.lower(), created.stderr
    user = f"iso-{secrets.token_hex(4)}"
    made = json.loads(_cli(server, "create-user", "--account-id", OTHER_ACCOUNT, "--user-name", user, "--json"))
    assert made["Arn"] == f"arn:aws:iam::{OTHER_ACCOUNT}:user/{user}"
    everything = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}'
    _cli(server, "put-user-policy", "--account-id", OTHER_ACCOUNT, "--user-name", user, "--policy-name", "kms",
         "--policy-document", everything)  # fmt: skip
    key = json.loads(_cli(server, "create-access-key", "--account-id", OTHER_ACCOUNT, "--user-name", user, "--json"))
    assert key["AccountId"] == OTHER_ACCOUNT and key["Status"] == "Active"
    return Principal(made["Arn"], server.client(key["AccessKeyId"], key["SecretAccessKey"]))


@dataclass(frozen=True)
class OwnedKey:
    key_id: str
    arn: str
    blob: bytes


@pytest.fixture(scope="module")
def owned(server: ServerProcess) -> OwnedKey:
    kms: Any = server.client()
    meta = kms.create_key(Description="isolation")["KeyMetadata"]
    blob: bytes = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"account one secret")["CiphertextBlob"]
    return OwnedKey(meta["KeyId"], meta["Arn"], blob)


def _error(call: Callable[[], Any]) -> ClientError:
    with pytest.raises(ClientError) as caught:
        result = call()
        pytest.fail(f"expected an error, got {result}")
    return caught.value


def _code(exc: ClientError) -> str:
    return str(exc.response["Error"]["Code"])


def _message(exc: ClientError) -> str:
    return str(exc.response["Error"].get("Message", ""))


def _all_key_ids(kms: Any) -> set[str]:
    ids: set[str] = set()
    for page in kms.get_paginator("list_keys").paginate():
        ids.update(k["KeyId"] for k in page["Keys"])
    return ids


def _denied(principal: Principal, action: str, resource: str) -> str:
    return (
        f"User: {principal.user_arn} is not authorized to perform: kms:{action} on resource: {resource} "
        f"because no resource-based policy allows the kms:{action} action"
    )


# -- accounts -------------------------------------------------------------------------------------------------


def test_list_keys_shows_only_own_account(server: ServerProcess, other: Principal, owned: OwnedKey) -> None:
    mine: str = other.kms.create_key(Description="other account")["KeyMetadata"]["KeyId"]
    theirs = _all_key_ids(other.kms)
    assert owned.key_id not in theirs
    assert mine in theirs
    assert mine not in _all_key_ids(server.client())
    for page in other.kms.get_paginator("list_keys").paginate():
        for key in page["Keys"]:
            assert f":{OTHER_ACCOUNT}:" in key["KeyArn"], key


@pytest.mark.parametrize(
    ("action", "call"),
    [
        ("DescribeKey", lambda kms, ref: kms.describe_key(KeyId=ref)),
        ("Encrypt", lambda kms, ref: kms.encrypt(KeyId=ref, Plaintext=b"x")),
        ("GenerateDataKey", lambda kms, ref: kms.generate_data_key(KeyId=ref, KeySpec="AES_256")),
        ("DisableKey", lambda kms, ref: kms.disable_key(KeyId=ref)),
    ],
)
def test_other_accounts_key_by_arn_is_access_denied(
    other: Principal, owned: OwnedKey, action: str, call: Callable[[Any, str], Any]
) -> None:
    exc = _error(lambda: call(other.kms, owned.arn))
    assert _code(exc) == "AccessDeniedException", exc.response
    assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert _message(exc) == _denied(other, action, owned.arn)


@pytest.mark.parametrize(
    "call",
    [
        lambda kms, ref: kms.describe_key(KeyId=ref),
        lambda kms, ref: kms.encrypt(KeyId=ref, Plaintext=b"x"),
        lambda kms, ref: kms.generate_data_key(KeyId=ref, KeySpec="AES_256"),
    ],
    ids=["DescribeKey", "Encrypt", "GenerateDataKey"],
)
def test_other_accounts_key_by_bare_id_is_not_found(
    other: Principal, owned: OwnedKey, call: Callable[[Any, str], Any]
) -> None:
    exc = _error(lambda: call(other.kms, owned.key_id))
    assert _code(exc) == "NotFoundException", exc.response
    assert ACCOUNT_ID not in _message(exc), "the message must not reveal the owning account"


def test_decrypt_of_other_accounts_ciphertext_fails(other: Principal, owned: OwnedKey) -> None:
    exc = _error(lambda: other.kms.decrypt(CiphertextBlob=owned.blob))
    assert _code(exc) in {"AccessDeniedException", "InvalidCiphertextException"}, exc.response
    if _code(exc) == "AccessDeniedException":
        assert _message(exc) == _denied(other, "Decrypt", owned.arn)
    assert b"account one secret" not in json.dumps(exc.response, default=str).encode()
    exc = _error(lambda: other.kms.re_encrypt(CiphertextBlob=owned.blob, DestinationKeyId=owned.arn))
    assert _code(exc) in {"AccessDeniedException", "InvalidCiphertextException"}, exc.response


def test_alias_names_are_per_account(server: ServerProcess, other: Principal, owned: OwnedKey) -> None:
    name = f"alias/iso-{secrets.token_hex(4)}"
    mine: Any = server.client()
    mine.create_alias(AliasName=name, TargetKeyId=owned.key_id)
    theirs_key: str = other.kms.create_key()["KeyMetadata"]["KeyId"]
    other.kms.create_alias(AliasName=name, TargetKeyId=theirs_key)
    assert mine.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == owned.key_id
    assert other.kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == theirs_key
    alias_arn = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:{name}"
    exc = _error(lambda: other.kms.encrypt(KeyId=alias_arn, Plaintext=b"x"))
    assert _code(exc) == "AccessDeniedException", exc.response


# -- regions --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def europe(server: ServerProcess) -> Any:
    """The same credentials, signing for eu-west-1."""
    return server.client(region=OTHER_REGION)


def test_key_arns_carry_the_region(server: ServerProcess, europe: Any, owned: OwnedKey) -> None:
    assert owned.arn == f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{owned.key_id}"
    meta = europe.create_key(Description="europe")["KeyMetadata"]
    assert meta["Arn"] == f"arn:aws:kms:{OTHER_REGION}:{ACCOUNT_ID}:key/{meta['KeyId']}"
    assert europe.encrypt(KeyId=meta["KeyId"], Plaintext=b"x")["KeyId"] == meta["Arn"]


def test_key_is_invisible_from_another_region(server: ServerProcess, europe: Any, owned: OwnedKey) -> None:
    for call in (
        lambda: europe.describe_key(KeyId=owned.key_id),
        lambda: europe.encrypt(KeyId=owned.key_id, Plaintext=b"x"),
    ):
        exc = _error(call)
        assert _code(exc) == "NotFoundException", exc.response
    assert owned.key_id not in _all_key_ids(europe)
    european: str = europe.create_key()["KeyMetadata"]["KeyId"]
    assert european not in _all_key_ids(server.client())
    home: Any = server.client()
    exc = _error(lambda: home.describe_key(KeyId=european))
    assert _code(exc) == "NotFoundException", exc.response


def test_ciphertext_does_not_decrypt_in_another_region(europe: Any, owned: OwnedKey) -> None:
    exc = _error(lambda: europe.decrypt(CiphertextBlob=owned.blob))
    assert _code(exc) in {"InvalidCiphertextException", "NotFoundException"}, exc.response


def test_aliases_are_per_region(server: ServerProcess, europe: Any, owned: OwnedKey) -> None:
    name = f"alias/region-{secrets.token_hex(4)}"
    home: Any = server.client()
    home.create_alias(AliasName=name, TargetKeyId=owned.key_id)
    with pytest.raises(ClientError) as missing:
        europe.describe_key(KeyId=name)
    assert _code(missing.value) == "NotFoundException"
    european: str = europe.create_key()["KeyMetadata"]["KeyId"]
    europe.create_alias(AliasName=name, TargetKeyId=european)  # the same name, free in this region
    assert home.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == owned.key_id
    assert europe.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == european
    assert home.encrypt(KeyId=name, Plaintext=b"x")["KeyId"].startswith(f"arn:aws:kms:{REGION}:")
    assert europe.encrypt(KeyId=name, Plaintext=b"x")["KeyId"].startswith(f"arn:aws:kms:{OTHER_REGION}:")
    home_aliases = {a["AliasName"]: a for a in home.list_aliases(KeyId=owned.key_id)["Aliases"]}
    assert home_aliases[name]["AliasArn"] == f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:{name}"
    europe_aliases = {a["AliasName"]: a for a in europe.list_aliases(KeyId=european)["Aliases"]}
    assert europe_aliases[name]["AliasArn"] == f"arn:aws:kms:{OTHER_REGION}:{ACCOUNT_ID}:{name}"
    # A target key must be in the alias's region: the home key cannot be named by a European alias.
    exc = _error(lambda: europe.create_alias(AliasName=f"{name}-x", TargetKeyId=owned.key_id))
    assert _code(exc) == "NotFoundException", exc.response
