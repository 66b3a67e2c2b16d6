"""Cryptographic operations over HTTP with boto3: Encrypt, Decrypt, ReEncrypt, GenerateDataKey,
GenerateDataKeyWithoutPlaintext, GenerateRandom and DryRun, on every storage engine.

AWS is the reference (KMS API Reference pages of each operation): Plaintext is 1-4096 bytes; NumberOfBytes is
1-1024; GenerateDataKey(WithoutPlaintext) needs exactly one of KeySpec and NumberOfBytes; the encryption context
must match exactly (InvalidCiphertextException otherwise); a Decrypt KeyId or ReEncrypt SourceKeyId naming
another key is IncorrectKeyException; responses name keys by key ARN; DryRun answers DryRunOperationException
(HTTP 400 as AWS sends it, not the 412 of botocore's model) when the call would have succeeded, and the real
error otherwise ("Testing your permissions",
https://docs.aws.amazon.com/kms/latest/developerguide/programming-dryrun.html). Every one of these operations
takes a key id, key ARN, alias name or alias ARN.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.kmsapi import (
    GARBAGE_KEY_ID,
    alias_arn,
    expect_error,
    fails,
    key_arn,
    message,
    new_key,
    raw_client,
    unique_alias,
    unknown_key_id,
)
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Named:
    """A key with an alias: the four ways to name it."""

    key_id: str
    alias: str

    @property
    def arn(self) -> str:
        return key_arn(self.key_id)

    @property
    def alias_arn(self) -> str:
        return alias_arn(self.alias)

    @property
    def forms(self) -> tuple[str, str, str, str]:
        return (self.key_id, self.arn, self.alias, self.alias_arn)


@pytest.fixture(scope="module")
def shared(server: ServerProcess) -> Named:
    """One enabled key with an alias, for tests that do not change its state."""
    kms: Any = server.client()
    key_id = new_key(kms, "encryption-shared")
    alias = unique_alias("enc")
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return Named(key_id, alias)


@pytest.fixture(scope="module")
def second(server: ServerProcess) -> Named:
    kms: Any = server.client()
    key_id = new_key(kms, "encryption-second")
    alias = unique_alias("enc2")
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return Named(key_id, alias)


@pytest.fixture
def raw(server: ServerProcess) -> Any:
    return raw_client(server)


def _missing_refs() -> list[str]:
    missing = unknown_key_id()
    name = unique_alias("nothing")
    return [missing, key_arn(missing), name, alias_arn(name), GARBAGE_KEY_ID]


# -- Encrypt / Decrypt ----------------------------------------------------------------------------------------


def test_encrypt_and_decrypt_with_every_key_id_form(kms: Any, shared: Named) -> None:
    for ref in shared.forms:
        encrypted = kms.encrypt(KeyId=ref, Plaintext=b"hello " + ref.encode())
        assert encrypted["KeyId"] == shared.arn, ref
        assert encrypted["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
        blob = encrypted["CiphertextBlob"]
        assert b"hello" not in blob
        for decrypt_ref in shared.forms:
            decrypted = kms.decrypt(CiphertextBlob=blob, KeyId=decrypt_ref)
            assert decrypted["Plaintext"] == b"hello " + ref.encode()
            assert decrypted["KeyId"] == shared.arn
            assert decrypted["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"


def test_decrypt_without_key_id_finds_the_key_in_the_ciphertext(kms: Any, shared: Named) -> None:
    blob = kms.encrypt(KeyId=shared.alias, Plaintext=b"self-describing")["CiphertextBlob"]
    decrypted = kms.decrypt(CiphertextBlob=blob)
    assert decrypted["Plaintext"] == b"self-describing"
    assert decrypted["KeyId"] == shared.arn


def test_same_plaintext_encrypts_differently_each_time(kms: Any, shared: Named) -> None:
    one = kms.encrypt(KeyId=shared.key_id, Plaintext=b"same")["CiphertextBlob"]
    two = kms.encrypt(KeyId=shared.key_id, Plaintext=b"same")["CiphertextBlob"]
    assert one != two
    assert kms.decrypt(CiphertextBlob=one)["Plaintext"] == kms.decrypt(CiphertextBlob=two)["Plaintext"] == b"same"


def test_encryption_context_must_match_exactly(kms: Any, shared: Named) -> None:
    """The same encryption context (an exact, case-sensitive match; order does not matter) is needed to decrypt;
    otherwise InvalidCiphertextException."""
    context = {"purpose": "e2e", "tenant": "Acme"}
    blob = kms.encrypt(KeyId=shared.key_id, Plaintext=b"bound", EncryptionContext=context)["CiphertextBlob"]
    reordered = {"tenant": "Acme", "purpose": "e2e"}
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=reordered)["Plaintext"] == b"bound"
    for wrong in (
        None,
        {"purpose": "e2e"},
        {"purpose": "e2e", "tenant": "acme"},
        {"purpose": "e2e", "tenant": "Acme", "extra": "x"},
        {"Purpose": "e2e", "tenant": "Acme"},
    ):
        extra: dict[str, Any] = {} if wrong is None else {"EncryptionContext": wrong}
        expect_error(kms.decrypt, "InvalidCiphertextException", CiphertextBlob=blob, **extra)
    plain = kms.encrypt(KeyId=shared.key_id, Plaintext=b"unbound")["CiphertextBlob"]
    expect_error(
        lambda: kms.decrypt(CiphertextBlob=plain, EncryptionContext={"purpose": "e2e"}), "InvalidCiphertextException"
    )
    assert kms.decrypt(CiphertextBlob=plain, EncryptionContext={})["Plaintext"] == b"unbound"


def test_decrypt_with_another_keys_id_is_incorrect_key(kms: Any, shared: Named, second: Named) -> None:
    """IncorrectKeyException: the KeyId in a Decrypt request must identify the key that encrypted the data."""
    blob = kms.encrypt(KeyId=shared.key_id, Plaintext=b"mine")["CiphertextBlob"]
    for ref in second.forms:
        expect_error(kms.decrypt, "IncorrectKeyException", CiphertextBlob=blob, KeyId=ref)


def test_decrypt_with_an_unknown_key_id_is_not_found(kms: Any, shared: Named) -> None:
    blob = kms.encrypt(KeyId=shared.key_id, Plaintext=b"mine")["CiphertextBlob"]
    for ref in _missing_refs():
        expect_error(kms.decrypt, "NotFoundException", CiphertextBlob=blob, KeyId=ref)


def test_corrupted_ciphertext_is_invalid(kms: Any, shared: Named) -> None:
    blob = kms.encrypt(KeyId=shared.key_id, Plaintext=b"intact")["CiphertextBlob"]
    flipped = bytearray(blob)
    flipped[-1] ^= 0x01
    for bad in (b"garbage", bytes(flipped), blob[:-1], blob + b"\x00", bytes(len(blob))):
        exc = expect_error(kms.decrypt, "InvalidCiphertextException", CiphertextBlob=bad)
        assert "intact" not in message(exc)


def test_plaintext_of_4096_bytes_is_accepted(kms: Any, shared: Named) -> None:
    plaintext = bytes(range(256)) * 16
    assert len(plaintext) == 4096
    blob = kms.encrypt(KeyId=shared.key_id, Plaintext=plaintext)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext


def test_plaintext_over_4096_bytes_is_refused_without_echoing_it(kms: Any, raw: Any, shared: Named) -> None:
    """Plaintext is 1-4096 bytes (ValidationException); a refused plaintext must not appear in the error."""
    marker = b"SECRET-MARKER-" + b"z" * 4083
    assert len(marker) == 4097
    exc = expect_error(lambda: kms.encrypt(KeyId=shared.key_id, Plaintext=marker), "ValidationException")
    text = str(exc.response)
    for needle in (b"SECRET-MARKER", base64.b64encode(marker[:30]), marker[:8].hex().encode()):
        assert needle.decode() not in text, needle
    expect_error(lambda: raw.encrypt(KeyId=shared.key_id, Plaintext=b""), "ValidationException")


def test_symmetric_key_refuses_asymmetric_encryption_algorithms(kms: Any, shared: Named) -> None:
    """A symmetric encryption key supports only SYMMETRIC_DEFAULT (InvalidKeyUsageException otherwise)."""
    expect_error(
        lambda: kms.encrypt(KeyId=shared.key_id, Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256"),
        "InvalidKeyUsageException",
    )
    blob = kms.encrypt(KeyId=shared.key_id, Plaintext=b"x", EncryptionAlgorithm="SYMMETRIC_DEFAULT")["CiphertextBlob"]
    expect_error(
        lambda: kms.decrypt(CiphertextBlob=blob, EncryptionAlgorithm="RSAES_OAEP_SHA_1"), "InvalidKeyUsageException"
    )
    assert kms.decrypt(CiphertextBlob=blob, EncryptionAlgorithm="SYMMETRIC_DEFAULT")["Plaintext"] == b"x"


def test_unknown_keys_are_not_found_for_every_operation(kms: Any, shared: Named) -> None:
    blob = kms.encrypt(KeyId=shared.key_id, Plaintext=b"x")["CiphertextBlob"]
    for ref in _missing_refs():
        expect_error(kms.encrypt, "NotFoundException", KeyId=ref, Plaintext=b"x")
        expect_error(kms.generate_data_key, "NotFoundException", KeyId=ref, KeySpec="AES_256")
        expect_error(kms.generate_data_key_without_plaintext, "NotFoundException", KeyId=ref, KeySpec="AES_256")
        expect_error(kms.re_encrypt, "NotFoundException", CiphertextBlob=blob, DestinationKeyId=ref)


# -- ReEncrypt ------------------------------------------------------------------------------------------------


def test_re_encrypt_between_two_keys(kms: Any, shared: Named, second: Named) -> None:
    blob = kms.encrypt(KeyId=shared.key_id, Plaintext=b"moving")["CiphertextBlob"]
    for source_ref, destination_ref in zip(shared.forms, second.forms, strict=True):
        moved = kms.re_encrypt(CiphertextBlob=blob, SourceKeyId=source_ref, DestinationKeyId=destination_ref)
        assert moved["SourceKeyId"] == shared.arn
        assert moved["KeyId"] == second.arn
        assert moved["SourceEncryptionAlgorithm"] == moved["DestinationEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
        decrypted = kms.decrypt(CiphertextBlob=moved["CiphertextBlob"])
        assert decrypted["Plaintext"] == b"moving"
        assert decrypted["KeyId"] == second.arn
        expect_error(kms.decrypt, "IncorrectKeyException", CiphertextBlob=moved["CiphertextBlob"], KeyId=shared.key_id)


def test_re_encrypt_to_the_same_key(kms: Any, shared: Named) -> None:
    blob = kms.encrypt(KeyId=shared.key_id, Plaintext=b"refresh")["CiphertextBlob"]
    again = kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=shared.alias)
    assert again["SourceKeyId"] == again["KeyId"] == shared.arn
    assert again["CiphertextBlob"] != blob
    assert kms.decrypt(CiphertextBlob=again["CiphertextBlob"])["Plaintext"] == b"refresh"


def test_re_encrypt_changes_the_encryption_context(kms: Any, shared: Named, second: Named) -> None:
    old = {"stage": "old"}
    new = {"stage": "new"}
    blob = kms.encrypt(KeyId=shared.key_id, Plaintext=b"context", EncryptionContext=old)["CiphertextBlob"]
    expect_error(
        lambda: kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=second.key_id), "InvalidCiphertextException"
    )
    expect_error(
        lambda: kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext=new, DestinationKeyId=second.key_id),
        "InvalidCiphertextException",
    )
    moved = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext=old,
        DestinationKeyId=second.key_id,
        DestinationEncryptionContext=new,
    )["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=moved, EncryptionContext=new)["Plaintext"] == b"context"
    expect_error(lambda: kms.decrypt(CiphertextBlob=moved, EncryptionContext=old), "InvalidCiphertextException")
    expect_error(lambda: kms.decrypt(CiphertextBlob=moved), "InvalidCiphertextException")


def test_re_encrypt_with_the_wrong_source_key_is_incorrect_key(kms: Any, shared: Named, second: Named) -> None:
    blob = kms.encrypt(KeyId=shared.key_id, Plaintext=b"x")["CiphertextBlob"]
    for ref in second.forms:
        expect_error(
            kms.re_encrypt,
            "IncorrectKeyException",
            CiphertextBlob=blob,
            SourceKeyId=ref,
            DestinationKeyId=shared.key_id,
        )


def test_re_encrypt_to_a_disabled_destination(kms: Any, shared: Named) -> None:
    destination = new_key(kms, "disabled-destination")
    kms.disable_key(KeyId=destination)
    blob = kms.encrypt(KeyId=shared.key_id, Plaintext=b"x")["CiphertextBlob"]
    expect_error(lambda: kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=destination), "DisabledException")


# -- GenerateDataKey / GenerateDataKeyWithoutPlaintext --------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "length"),
    [
        ({"KeySpec": "AES_256"}, 32),
        ({"KeySpec": "AES_128"}, 16),
        ({"NumberOfBytes": 1}, 1),
        ({"NumberOfBytes": 64}, 64),
        ({"NumberOfBytes": 1024}, 1024),
    ],
    ids=["AES_256", "AES_128", "1-byte", "64-bytes", "1024-bytes"],
)
def test_generate_data_key_lengths(kms: Any, shared: Named, params: dict[str, Any], length: int) -> None:
    made = kms.generate_data_key(KeyId=shared.key_id, **params)
    assert len(made["Plaintext"]) == length
    assert made["KeyId"] == shared.arn
    decrypted = kms.decrypt(CiphertextBlob=made["CiphertextBlob"])
    assert decrypted["Plaintext"] == made["Plaintext"]
    assert decrypted["KeyId"] == shared.arn


def test_generate_data_key_with_every_key_id_form_and_context(kms: Any, shared: Named) -> None:
    context = {"file": "report.pdf"}
    for ref in shared.forms:
        made = kms.generate_data_key(KeyId=ref, KeySpec="AES_256", EncryptionContext=context)
        assert made["KeyId"] == shared.arn
        plain = kms.decrypt(CiphertextBlob=made["CiphertextBlob"], EncryptionContext=context)["Plaintext"]
        assert plain == made["Plaintext"]
        expect_error(kms.decrypt, "InvalidCiphertextException", CiphertextBlob=made["CiphertextBlob"])


def test_data_keys_are_random(kms: Any, shared: Named) -> None:
    keys = {kms.generate_data_key(KeyId=shared.key_id, KeySpec="AES_256")["Plaintext"] for _ in range(3)}
    assert len(keys) == 3


def test_generate_data_key_needs_exactly_one_of_key_spec_and_number_of_bytes(kms: Any, raw: Any, shared: Named) -> None:
    """ "You must specify either the KeySpec or the NumberOfBytes parameter (but not both)"; NumberOfBytes is
    1-1024 (ValidationException)."""
    for operation in ("generate_data_key", "generate_data_key_without_plaintext"):
        call = getattr(kms, operation)
        unchecked = getattr(raw, operation)
        expect_error(call, "ValidationException", KeyId=shared.key_id)
        expect_error(call, "ValidationException", KeyId=shared.key_id, KeySpec="AES_256", NumberOfBytes=32)
        expect_error(call, "ValidationException", KeyId=shared.key_id, NumberOfBytes=1025)
        expect_error(unchecked, "ValidationException", KeyId=shared.key_id, NumberOfBytes=0)
        expect_error(unchecked, "ValidationException", KeyId=shared.key_id, KeySpec="AES_512")


@pytest.mark.parametrize(
    ("params", "length"), [({"KeySpec": "AES_256"}, 32), ({"KeySpec": "AES_128"}, 16), ({"NumberOfBytes": 48}, 48)]
)
def test_generate_data_key_without_plaintext(kms: Any, shared: Named, params: dict[str, Any], length: int) -> None:
    for ref in shared.forms:
        made = kms.generate_data_key_without_plaintext(KeyId=ref, EncryptionContext={"k": "v"}, **params)
        assert "Plaintext" not in made
        assert made["KeyId"] == shared.arn
        plain = kms.decrypt(CiphertextBlob=made["CiphertextBlob"], EncryptionContext={"k": "v"})["Plaintext"]
        assert len(plain) == length


# -- GenerateRandom -------------------------------------------------------------------------------------------


def test_generate_random_lengths(kms: Any) -> None:
    for count in (1, 32, 1024):
        assert len(kms.generate_random(NumberOfBytes=count)["Plaintext"]) == count
    assert kms.generate_random(NumberOfBytes=32)["Plaintext"] != kms.generate_random(NumberOfBytes=32)["Plaintext"]


def test_generate_random_bounds(kms: Any, raw: Any) -> None:
    """NumberOfBytes is 1-1024."""
    expect_error(lambda: kms.generate_random(NumberOfBytes=1025), "ValidationException")
    expect_error(lambda: raw.generate_random(NumberOfBytes=0), "ValidationException")


# -- DryRun ---------------------------------------------------------------------------------------------------


def _dry_run_calls(kms: Any, key: Named, blob: bytes, other: Named) -> dict[str, Callable[[], Any]]:
    return {
        "Encrypt": lambda: kms.encrypt(KeyId=key.alias, Plaintext=b"dry", DryRun=True),
        "Decrypt": lambda: kms.decrypt(CiphertextBlob=blob, KeyId=key.arn, DryRun=True),
        "ReEncrypt": lambda: kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=other.alias_arn, DryRun=True),
        "GenerateDataKey": lambda: kms.generate_data_key(KeyId=key.key_id, KeySpec="AES_256", DryRun=True),
        "GenerateDataKeyWithoutPlaintext": lambda: kms.generate_data_key_without_plaintext(
            KeyId=key.key_id, NumberOfBytes=16, DryRun=True
        ),
    }


def test_dry_run_answers_dry_run_operation_exception(kms: Any, shared: Named, second: Named) -> None:
    """A call that would succeed answers DryRunOperationException with HTTP 400, returns no data and changes
    nothing."""
    blob = kms.encrypt(KeyId=shared.key_id, Plaintext=b"dry")["CiphertextBlob"]
    before = (
        kms.describe_key(KeyId=shared.key_id)["KeyMetadata"],
        kms.describe_key(KeyId=second.key_id)["KeyMetadata"],
    )
    for name, call in _dry_run_calls(kms, shared, blob, second).items():
        exc = expect_error(call, "DryRunOperationException", 400)
        assert "Plaintext" not in exc.response and "CiphertextBlob" not in exc.response, name
    after = (kms.describe_key(KeyId=shared.key_id)["KeyMetadata"], kms.describe_key(KeyId=second.key_id)["KeyMetadata"])
    assert before == after
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"dry"


def test_dry_run_reports_the_error_the_call_would_have_had(kms: Any, shared: Named, second: Named) -> None:
    """With DryRun, a call that would fail answers its real error (DisabledException, ValidationException,
    NotFoundException, InvalidCiphertextException), not DryRunOperationException."""
    key = new_key(kms, "dry-run-disabled")
    alias = unique_alias("dry")
    kms.create_alias(AliasName=alias, TargetKeyId=key)
    disabled = Named(key, alias)
    blob = kms.encrypt(KeyId=key, Plaintext=b"dry")["CiphertextBlob"]
    kms.disable_key(KeyId=key)
    for name, call in _dry_run_calls(kms, disabled, blob, second).items():
        exc = fails(call)
        assert exc.response["Error"]["Code"] == "DisabledException", (name, exc.response)
    expect_error(
        lambda: kms.generate_data_key(KeyId=shared.key_id, KeySpec="AES_256", NumberOfBytes=8, DryRun=True),
        "ValidationException",
    )
    expect_error(
        lambda: kms.encrypt(KeyId=unknown_key_id(), Plaintext=b"x", DryRun=True),
        "NotFoundException",
    )
    expect_error(lambda: kms.decrypt(CiphertextBlob=b"garbage", DryRun=True), "InvalidCiphertextException")
    good = kms.encrypt(KeyId=shared.key_id, Plaintext=b"x")["CiphertextBlob"]
    expect_error(lambda: kms.decrypt(CiphertextBlob=good, KeyId=second.key_id, DryRun=True), "IncorrectKeyException")
