"""What real AWS answered, pinned through boto3 against a real server process on every storage engine (issue 18).

A suite written by others and checked against responses recorded on real AWS KMS is the target: the error code,
the HTTP status, the message text character by character, whether a ``message`` field is there at all, and which
check answers first. Each test names its item of issue 18 and its source: "recorded" means the issue's list of
AWS's recorded responses; otherwise the API reference page or botocore's model
(``botocore/data/kms/2014-11-01/service-2.json``) named there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from tests.byok import wrap
from tests.e2e.kmsapi import expect_error, key_arn, message, new_key, unique_alias
from tests.e2e.principals import allow, make_user
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e


def wire_error(client: Any, call: Callable[..., Any], error_code: str, **params: Any) -> dict[str, Any]:
    """The JSON body of the error ``call(**params)`` must answer (``error_code``, HTTP 400), as it came over the
    wire: botocore turns a missing ``message`` into an empty one, so whether the field is there shows only here."""
    bodies: list[bytes] = []

    def keep(http_response: Any, **_: Any) -> None:
        bodies.append(http_response.content)

    client.meta.events.register("after-call.kms", keep)
    try:
        expect_error(call, error_code, **params)
    finally:
        client.meta.events.unregister("after-call.kms", keep)
    body: dict[str, Any] = json.loads(bodies[-1])
    return body


def _import(kms: Any, key_id: str, material: bytes) -> None:
    got = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    kms.import_key_material(
        KeyId=key_id,
        ImportToken=got["ImportToken"],
        EncryptedKeyMaterial=wrap(got["PublicKey"], "RSAES_OAEP_SHA_256", material),
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )


# -- item 1: DescribeKey after DeleteImportedKeyMaterial --------------------------------------------------------


def test_describe_key_after_delete_imported_key_material(kms: Any) -> None:
    """Recorded: KeyState PendingImport, no ExpirationModel (as before the first import), and a symmetric key
    keeps its CurrentKeyMaterialId."""
    key_id = new_key(kms, "recorded", Origin="EXTERNAL")
    _import(kms, key_id, os.urandom(32))
    before = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert before["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE" and before["KeyState"] == "Enabled"
    kms.delete_imported_key_material(KeyId=key_id)
    after = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (after["KeyState"], after["Enabled"]) == ("PendingImport", False)
    assert "ExpirationModel" not in after and "ValidTo" not in after
    assert after["CurrentKeyMaterialId"] == before["CurrentKeyMaterialId"]


# -- items 2 and 7: key ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["fake-key-id", "mrk-123"])
def test_a_malformed_key_id_is_quoted(kms: Any, bad: str) -> None:
    """Recorded: NotFoundException ``Invalid keyId 'fake-key-id'`` (the id in single quotes)."""
    calls: list[tuple[Callable[..., Any], dict[str, Any]]] = [
        (kms.describe_key, {}),
        (kms.encrypt, {"Plaintext": b"x"}),
    ]
    for call, params in calls:
        exc = expect_error(call, "NotFoundException", KeyId=bad, **params)
        assert message(exc) == f"Invalid keyId '{bad}'"


def test_key_id_syntax_as_aws_judges_it(kms: Any) -> None:
    """As an AWS-checked emulator's suite (floci) pins AWS's answers: an upper-case UUID is a key id that does not
    exist; a key ARN with a malformed key id names the id alone, unquoted; 32 hex digits without dashes is
    malformed (recorded: ``Invalid keyId '134f2428cec14b25a1ae9048164dba47'``)."""
    upper = "786CA7CD-B74B-42B3-B887-902AD7AB6429"
    assert message(expect_error(kms.describe_key, "NotFoundException", KeyId=upper)) == (
        f"Key '{key_arn(upper)}' does not exist"
    )
    assert message(expect_error(kms.describe_key, "NotFoundException", KeyId=key_arn("foo"))) == "Invalid keyId foo"
    dashless = "134f2428cec14b25a1ae9048164dba47"
    assert message(expect_error(kms.describe_key, "NotFoundException", KeyId=dashless)) == f"Invalid keyId '{dashless}'"


def test_an_unknown_multi_region_key_id_is_not_found(kms: Any) -> None:
    """Recorded: ``mrk-`` and 32 hex digits is a valid key id, so an unknown one is NotFound for that key."""
    mrk = "mrk-" + os.urandom(16).hex()
    for ref in (mrk, key_arn(mrk)):
        exc = expect_error(kms.describe_key, "NotFoundException", KeyId=ref)
        assert message(exc) == f"Key '{key_arn(mrk)}' does not exist"


# -- items 3, 4 and 11: RotateKeyOnDemand ---------------------------------------------------------------------


def test_rotate_key_on_demand_answers_the_key_arn(kms: Any) -> None:
    """Recorded: the key ARN, as GetKeyRotationStatus answers, whichever form named the key."""
    key_id = new_key(kms, "recorded")
    for ref in (key_id, key_arn(key_id)):
        assert kms.rotate_key_on_demand(KeyId=ref)["KeyId"] == key_arn(key_id)


def test_rotation_of_a_disabled_asymmetric_key_is_disabled(kms: Any) -> None:
    """Recorded: RotateKeyOnDemand on a disabled RSA key answers ``DisabledException '<arn> is disabled.'``: the
    key state is checked before the key spec. Enable/DisableKeyRotation follow the same order."""
    key_id = new_key(kms, "recorded", KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    kms.disable_key(KeyId=key_id)
    for call in (kms.rotate_key_on_demand, kms.enable_key_rotation, kms.disable_key_rotation):
        assert message(expect_error(call, "DisabledException", KeyId=key_id)) == f"{key_arn(key_id)} is disabled."


@pytest.mark.parametrize(("spec", "usage"), [("RSA_2048", "ENCRYPT_DECRYPT"), ("HMAC_256", "GENERATE_VERIFY_MAC")])
def test_rotate_key_on_demand_of_a_non_symmetric_key_has_no_message_field(kms: Any, spec: str, usage: str) -> None:
    """Recorded: UnsupportedOperationException with no ``message`` field at all, not an empty one. EnableKeyRotation
    answers alike and DisableKeyRotation succeeds (rotation is off), as an AWS-checked emulator's suite (floci's)
    pins them."""
    key_id = new_key(kms, "recorded", KeySpec=spec, KeyUsage=usage)
    for call in (kms.rotate_key_on_demand, kms.enable_key_rotation):
        body = wire_error(kms, call, "UnsupportedOperationException", KeyId=key_id)
        assert body == {"__type": "UnsupportedOperationException"}
    kms.disable_key_rotation(KeyId=key_id)


# -- item 6: DryRun --------------------------------------------------------------------------------------------


def test_dry_run_answers_http_400(kms: Any) -> None:
    """Recorded: HTTP 400 (botocore's model says 412), code and message as documented."""
    key_id = new_key(kms, "recorded")
    body = wire_error(kms, kms.encrypt, "DryRunOperationException", KeyId=key_id, Plaintext=b"x", DryRun=True)
    assert body == {
        "__type": "DryRunOperationException",
        "message": "The request would have succeeded, but the DryRun option is set.",
    }


# -- item 8: tags ----------------------------------------------------------------------------------------------


def _tags(count: int) -> list[dict[str, str]]:
    return [{"TagKey": f"k{n:02d}", "TagValue": "v"} for n in range(count)]


TAG_ERRORS = {
    "reserved": ([{"TagKey": "aws:owner", "TagValue": "x"}], "Tags beginning with aws: are reserved"),
    "duplicate": ([{"TagKey": "env", "TagValue": "a"}, {"TagKey": "env", "TagValue": "b"}], "Duplicate tag keys"),
    "too-many": (_tags(51), "Too many tags"),
}


@pytest.mark.parametrize("case", sorted(TAG_ERRORS))
def test_tag_errors_on_create_key_and_tag_resource(kms: Any, case: str) -> None:
    """Recorded: TagException with these messages (no trailing period), on CreateKey and TagResource alike."""
    tags, text = TAG_ERRORS[case]
    assert message(expect_error(kms.create_key, "TagException", Tags=tags)) == text
    key_id = new_key(kms, "recorded")
    assert message(expect_error(kms.tag_resource, "TagException", KeyId=key_id, Tags=tags)) == text
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == []
    if case == "reserved":
        exc = expect_error(kms.untag_resource, "TagException", KeyId=key_id, TagKeys=["aws:owner"])
        assert message(exc) == text


# -- item 9: CreateAlias without the alias/ prefix --------------------------------------------------------------


def test_create_alias_without_the_prefix_is_a_validation_exception(kms: Any) -> None:
    """Recorded: ValidationException on the wire (the API reference lists InvalidAliasNameException)."""
    key_id = new_key(kms, "recorded")
    exc = expect_error(kms.create_alias, "ValidationException", AliasName="no-prefix", TargetKeyId=key_id)
    assert message(exc) == (
        'Alias must start with the prefix "alias/". Please see '
        "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"
    )
    reserved = expect_error(
        kms.create_alias, "InvalidAliasNameException", AliasName="alias/aws/mine", TargetKeyId=key_id
    )
    assert message(reserved) == 'Alias must not begin with "alias/aws/", which is reserved.'
    assert kms.list_aliases(KeyId=key_id)["Aliases"] == []
    kms.create_alias(AliasName=unique_alias("recorded"), TargetKeyId=key_id)


# -- item 10: enum lists -------------------------------------------------------------------------------------


def test_enum_values_are_listed_in_aws_order(kms: Any) -> None:
    """Recorded: GenerateMac and VerifyMac with MacAlgorithm INVALID list the values in AWS's own order."""
    key_id = new_key(kms, "recorded", KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    expected = (
        "1 validation error detected: Value 'INVALID' at 'macAlgorithm' failed to satisfy constraint: "
        "Member must satisfy enum value set: [HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]"
    )
    params: dict[str, Any] = {"KeyId": key_id, "Message": b"m", "MacAlgorithm": "INVALID"}
    assert message(expect_error(kms.generate_mac, "ValidationException", **params)) == expected
    assert message(expect_error(kms.verify_mac, "ValidationException", Mac=b"x" * 32, **params)) == expected
    exc = expect_error(kms.create_key, "ValidationException", KeySpec="HMAC_256", KeyUsage="RANDOM")
    assert message(exc).endswith(
        "[ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC, KEY_AGREEMENT, ENCAPSULATE_DECAPSULATE]"
    )


# -- item 12: KeyUsage and DeriveSharedSecret -----------------------------------------------------------------


@pytest.mark.parametrize("spec", ["RSA_2048", "ECC_NIST_P256", "HMAC_256", "ML_DSA_44"])
def test_create_key_of_a_non_symmetric_spec_needs_a_key_usage(kms: Any, spec: str) -> None:
    """Recorded: refused, not defaulted (CreateKey, KeyUsage: "optional when you are creating a symmetric
    encryption KMS key; otherwise, it is required")."""
    exc = expect_error(kms.create_key, "ValidationException", KeySpec=spec)
    assert message(exc) == "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."
    assert kms.create_key(KeySpec="SYMMETRIC_DEFAULT")["KeyMetadata"]["KeyUsage"] == "ENCRYPT_DECRYPT"


def test_the_key_usage_key_spec_message_has_no_period(kms: Any) -> None:
    """Recorded: ``KeyUsage SIGN_VERIFY is not compatible with KeySpec SYMMETRIC_DEFAULT`` without a period."""
    for spec, usage in (("SYMMETRIC_DEFAULT", "SIGN_VERIFY"), ("ECC_NIST_P256", "ENCRYPT_DECRYPT")):
        exc = expect_error(kms.create_key, "ValidationException", KeySpec=spec, KeyUsage=usage)
        assert message(exc) == f"KeyUsage {usage} is not compatible with KeySpec {spec}"


def test_derive_shared_secret_with_an_unparsable_public_key_has_an_empty_message(kms: Any) -> None:
    """Recorded: ValidationException whose ``message`` is there and empty."""
    key_id = new_key(kms, "recorded", KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")
    for garbage in (b"\x30\x03\x02\x01\x01", b"not a public key"):
        body = wire_error(
            kms, kms.derive_shared_secret, "ValidationException", KeyId=key_id, KeyAgreementAlgorithm="ECDH",
            PublicKey=garbage,
        )  # fmt: skip
        assert body == {"__type": "ValidationException", "message": ""}


# -- item 5: RetireGrant ---------------------------------------------------------------------------------------


def test_the_key_account_and_its_delegates_may_retire_a_grant(server: ServerProcess, kms: Any) -> None:
    """Recorded: besides the retiring principal and a grantee allowed to, the key's account retires a grant, and
    so does a principal it delegates kms:RetireGrant to through IAM. Others are refused."""
    key_id = new_key(kms, "recorded")
    grantee = make_user(server, "grantee")
    delegate = make_user(server, "retire-delegate", policy=allow("kms:RetireGrant"))
    bystander = make_user(server, "bystander", policy=allow("kms:DescribeKey"))
    outsider = make_user(server, "outsider", account_id="444455556666", policy=allow("kms:RetireGrant"))

    def grant() -> str:
        made: str = kms.create_grant(KeyId=key_id, GranteePrincipal=grantee.arn, Operations=["Encrypt"])["GrantId"]
        return made

    first, second = grant(), grant()
    for caller in (grantee, bystander, outsider):
        expect_error(caller.kms.retire_grant, "AccessDeniedException", KeyId=key_arn(key_id), GrantId=first)
    delegate.kms.retire_grant(KeyId=key_arn(key_id), GrantId=first)
    kms.retire_grant(KeyId=key_id, GrantId=second)  # the account's administrator
    assert kms.list_grants(KeyId=key_id)["Grants"] == []


# -- the sweep: answers AWS is known to give ------------------------------------------------------------------

KEY_ONLY_OPERATIONS = [
    ("get_key_policy", {}),
    ("disable_key", {}),
    ("list_resource_tags", {}),
    ("get_key_rotation_status", {}),
    ("list_grants", {}),
    ("create_grant", {"GranteePrincipal": "arn:aws:iam::111122223333:user/admin", "Operations": ["Encrypt"]}),
    ("schedule_key_deletion", {"PendingWindowInDays": 7}),
]


@pytest.mark.parametrize(("method", "params"), KEY_ONLY_OPERATIONS, ids=[m for m, _ in KEY_ONLY_OPERATIONS])
def test_an_alias_given_to_a_key_only_operation_is_an_invalid_arn(kms: Any, method: str, params: Any) -> None:
    """AWS (seen in its answers to GetKeyPolicy, DisableKey, CreateGrant, ListResourceTags): InvalidArnException
    'Key Aliases are not supported for this operation.', existing alias or not, alias name or alias ARN. The
    operations whose model lists InvalidArnException answer so."""
    key_id = new_key(kms, "recorded")
    alias = unique_alias("recorded")
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    call = getattr(kms, method)
    for ref in (alias, f"arn:aws:kms:us-east-1:111122223333:{alias}", "alias/never-made"):
        exc = expect_error(call, "InvalidArnException", KeyId=ref, **params)
        assert message(exc) == "Key Aliases are not supported for this operation."
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def test_generate_data_key_needs_exactly_one_length_and_a_symmetric_key(kms: Any) -> None:
    """AWS: 'Please specify either number of bytes or key spec.' for neither and for both; an asymmetric key is
    InvalidKeyUsageException 'You cannot generate a data key with an asymmetric CMK' (AWS SDK errors quoted in
    user reports)."""
    key_id = new_key(kms, "recorded")
    for call in (kms.generate_data_key, kms.generate_data_key_without_plaintext):
        lengths: list[dict[str, Any]] = [{}, {"KeySpec": "AES_256", "NumberOfBytes": 32}]
        for params in lengths:
            exc = expect_error(call, "ValidationException", KeyId=key_id, **params)
            assert message(exc) == "Please specify either number of bytes or key spec."
    rsa = new_key(kms, "recorded", KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    for call in (kms.generate_data_key, kms.generate_data_key_without_plaintext):
        exc = expect_error(call, "InvalidKeyUsageException", KeyId=rsa, KeySpec="AES_256")
        assert message(exc) == "You cannot generate a data key with an asymmetric CMK"


def test_key_usage_is_checked_before_the_key_state_and_the_state_before_the_spec(kms: Any) -> None:
    """As an AWS-checked emulator's suite (floci's) pins AWS's order: a Disabled HMAC key given to Sign is
    InvalidKeyUsageException; a Disabled RSA encryption key given to GenerateDataKey is DisabledException (its
    usage fits; its spec would not)."""
    hmac_key = new_key(kms, "recorded", KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    kms.disable_key(KeyId=hmac_key)
    exc = expect_error(
        kms.sign, "InvalidKeyUsageException", KeyId=hmac_key, Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256"
    )
    assert message(exc) == f"{key_arn(hmac_key)} key usage is GENERATE_VERIFY_MAC which is not valid for Sign."
    rsa = new_key(kms, "recorded", KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    kms.disable_key(KeyId=rsa)
    exc = expect_error(kms.generate_data_key, "DisabledException", KeyId=rsa, KeySpec="AES_256")
    assert message(exc) == f"{key_arn(rsa)} is disabled."


def test_get_public_key_of_a_symmetric_or_hmac_key_has_no_message_field(kms: Any) -> None:
    """As an AWS-checked emulator's suite (floci's) pins it: UnsupportedOperationException with no message."""
    for key_id in (
        new_key(kms, "recorded"),
        new_key(kms, "recorded", KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC"),
    ):
        body = wire_error(kms, kms.get_public_key, "UnsupportedOperationException", KeyId=key_id)
        assert body == {"__type": "UnsupportedOperationException"}


def test_an_sm2_key_is_not_offered_in_this_region(kms: Any) -> None:
    """AWS offers SM2 only in its China Regions; elsewhere CreateKey answers UnsupportedOperationException
    'KeySpec SM2 is not supported in this Region' (as an AWS-checked emulator's suite, floci's, pins it)."""
    exc = expect_error(kms.create_key, "UnsupportedOperationException", KeySpec="SM2", KeyUsage="SIGN_VERIFY")
    assert message(exc) == "KeySpec SM2 is not supported in this Region"
