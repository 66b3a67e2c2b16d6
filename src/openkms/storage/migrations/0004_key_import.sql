-- openkms schema version 4: imported key material (BYOK), GetParametersForImport / ImportKeyMaterial /
-- DeleteImportedKeyMaterial.
--
-- One row per KMS key that ever had key material imported. It outlives the material itself: after
-- DeleteImportedKeyMaterial or expiry the wrapped material (key_versions) is gone, but version_id and the
-- fingerprint stay, so that only the same material can be imported again and the ciphertexts made before
-- (which name version_id) decrypt again. fingerprint is a one-way SHA-256 commitment (crypto/key_import.py),
-- never the material. Released files are never edited: a change is a new version.
CREATE TABLE imported_key_material (
    key_id {{id}} PRIMARY KEY REFERENCES keys (key_id) ON DELETE CASCADE,
    version_id {{id}} NOT NULL,
    fingerprint {{bytes}} NOT NULL,
    expiration_model {{id}} NOT NULL,
    valid_to {{time}},
    description TEXT,
    imported_at {{time}} NOT NULL
);

-- The expiry job looks for material whose ValidTo has passed.
CREATE INDEX imported_key_material_by_valid_to ON imported_key_material (valid_to);
