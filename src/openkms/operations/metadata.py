"""The shapes in which the API shows a key: DescribeKey's ``KeyMetadata`` and AWS's key material ids.

Every operation that answers with a key's metadata (CreateKey, DescribeKey, the key-state changes) and the
``openkms keys`` CLI build it here, so they show the same fields.
"""

from __future__ import annotations

import hashlib
from typing import Any

from openkms.operations import keyspecs
from openkms.operations.keystates import ENABLED, EXTERNAL, PENDING_DELETION
from openkms.storage.records import ImportedMaterialRecord, KeyRecord


def key_material_id(version_id: str) -> str:
    """AWS names key material with 64 hex characters; ours are derived from the 16-byte version id."""
    return hashlib.sha256(b"openkms key material id\x00" + bytes.fromhex(version_id)).hexdigest()


def key_metadata(key: KeyRecord, imported: ImportedMaterialRecord | None = None) -> dict[str, Any]:
    """DescribeKey's ``KeyMetadata`` with AWS's field names; absent fields are omitted.

    ``imported`` (EXTERNAL keys that ever had material imported) adds ``ExpirationModel`` and, for material that
    expires, ``ValidTo``, as of the latest import, while the key has its material. Once the material is deleted
    or expires, AWS omits both again (as before the first import) but keeps naming the symmetric key's material
    in ``CurrentKeyMaterialId`` (recorded AWS responses, issue 18 item 1)."""
    meta: dict[str, Any] = {
        "AWSAccountId": key.account_id,
        "KeyId": key.key_id,
        "Arn": key.arn,
        "CreationDate": key.creation_date,
        "Enabled": key.key_state == ENABLED,
        "Description": key.description,
        "KeyUsage": key.key_usage,
        "KeyState": key.key_state,
        "Origin": key.origin,
        "KeyManager": key.key_manager,
        "CustomerMasterKeySpec": key.key_spec,
        "KeySpec": key.key_spec,
        **keyspecs.algorithm_fields(key.key_spec, key.key_usage),
        "MultiRegion": key.multi_region,
    }
    if key.key_state == PENDING_DELETION:
        # AWS shows PendingDeletionWindowInDays only for multi-Region primaries awaiting replica deletion.
        meta["DeletionDate"] = key.deletion_date
    material_version = key.current_version_id
    if material_version is None and imported is not None and key.origin == EXTERNAL:
        material_version = imported.version_id  # deleted or expired: still the key's (only) material
    if material_version is not None and key.key_spec == keyspecs.SYMMETRIC_DEFAULT:
        meta["CurrentKeyMaterialId"] = key_material_id(material_version)
    if imported is not None and key.origin == EXTERNAL and key.current_version_id is not None:
        meta["ExpirationModel"] = imported.expiration_model
        if imported.valid_to is not None:
            meta["ValidTo"] = imported.valid_to
    return meta
