-- openkms schema version 10: rotating imported key material (ImportKeyMaterial NEW_KEY_MATERIAL,
-- RotateKeyOnDemand on EXTERNAL symmetric keys).
--
-- One row per key material ever imported into a symmetric EXTERNAL key (imported_key_material keeps the
-- *current* one, its expiration and the re-import rules). rotated_at is NULL while the material waits for
-- RotateKeyOnDemand (KeyMaterialState PENDING_ROTATION); the first material's is its import time.
-- fingerprint is a one-way commitment (crypto/key_import.py), never the material.
CREATE TABLE key_materials (
    key_id {{id}} NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
    version_id {{id}} NOT NULL,
    fingerprint {{bytes}} NOT NULL,
    expiration_model {{id}} NOT NULL,
    valid_to {{time}},
    description TEXT,
    imported_at {{time}} NOT NULL,
    rotated_at {{time}},
    PRIMARY KEY (key_id, version_id)
);
