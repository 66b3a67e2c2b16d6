"""operations/import_expiry.expire_imported_material: the job a scheduler runs, with the clock it is given."""

from __future__ import annotations

from dataclasses import replace

from openkms.operations.import_expiry import BATCH, expire_imported_material
from tests.operations.conftest import DAY, KMS, T0, counting_write_transactions


def _expiring(kms: KMS, valid_to: float) -> tuple[str, bytes]:
    return kms.imported_key(ValidTo=valid_to, ExpirationModel="KEY_MATERIAL_EXPIRES")


def test_deletes_exactly_the_expired_material(kms: KMS) -> None:
    early, early_material = _expiring(kms, T0 + 100)
    late, _ = _expiring(kms, T0 + 1000)
    forever, _ = kms.imported_key(ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    pending = kms.external_key()
    blob = kms.encrypt(early)

    assert expire_imported_material(kms.inner.services, T0 + 99) == 0
    assert expire_imported_material(kms.inner.services, T0 + 500) == 1
    assert kms.versions(early) == []
    assert [kms.describe(k)["KeyState"] for k in (early, late, forever, pending)] == [
        "PendingImport",
        "Enabled",
        "Enabled",
        "PendingImport",
    ]
    assert expire_imported_material(kms.inner.services, T0 + 500) == 0  # idempotent
    kms.fails("Decrypt", "KMSInvalidStateException", CiphertextBlob=blob)

    kms.import_material(early, early_material)  # the same material brings the ciphertexts back
    assert kms.decrypt(blob) == b"secret"
    assert expire_imported_material(kms.inner.services, T0 + 10 * DAY) == 1  # late; early no longer expires
    assert kms.describe(late)["KeyState"] == "PendingImport"
    assert kms.describe(early)["KeyState"] == "Enabled"


def test_one_write_transaction_per_key(kms: KMS) -> None:
    for offset in (10, 20, 30):
        _expiring(kms, T0 + offset)
    with counting_write_transactions(kms.storage, requests_only=False) as opened:
        assert expire_imported_material(kms.inner.services, T0 + 60) == 3
    assert opened == ["transaction"] * 3


def test_material_reimported_before_the_job_is_left_alone(kms: KMS) -> None:
    key_id, material = _expiring(kms, T0 + 100)
    kms.clock.set(T0 + 200)  # expired on the request path ...
    kms.fails("Encrypt", "KMSInvalidStateException", KeyId=key_id, Plaintext=b"x")
    kms.import_material(key_id, material, ValidTo=T0 + 5000, ExpirationModel="KEY_MATERIAL_EXPIRES")  # ... renewed
    assert expire_imported_material(kms.inner.services, T0 + 200) == 0
    assert kms.describe(key_id)["KeyState"] == "Enabled"
    assert kms.decrypt(kms.encrypt(key_id)) == b"secret"


def test_a_pending_deletion_key_keeps_its_state(kms: KMS) -> None:
    key_id, _ = _expiring(kms, T0 + 100)
    kms.ok("ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=7)
    assert expire_imported_material(kms.inner.services, T0 + 100) == 1
    assert kms.versions(key_id) == []
    assert kms.describe(key_id)["KeyState"] == "PendingDeletion"


def test_more_than_one_batch(kms: KMS) -> None:
    """Keys beyond the first page are reached too. One key is imported for real; the others get copies of its
    rows (their wrapped material would not unwrap under their own ARN, which this job never needs)."""
    first, _ = _expiring(kms, T0 + 50)
    with kms.storage.read() as tx:
        record = tx.get_imported_material(first)
        [version] = tx.list_versions(first)
    assert record is not None
    keys = [first]
    for _ in range(BATCH + 2):
        key_id = kms.external_key()
        with kms.storage.transaction() as tx:
            current = tx.get_key(key_id)
            assert current is not None
            tx.insert_version(replace(version, key_id=key_id))
            tx.put_imported_material(replace(record, key_id=key_id))
            tx.update_key(replace(current, key_state="Enabled", current_version_id=version.version_id))
        keys.append(key_id)
    assert expire_imported_material(kms.inner.services, T0 + 50) == BATCH + 3
    assert all(kms.versions(k) == [] for k in keys)
