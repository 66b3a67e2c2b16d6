"""Plain persisted records.

Confusion alert: a :class:`KeyRecord` is the AWS object (metadata, state, policy); a
:class:`KeyVersionRecord` is one backing version of its material, and it holds that material only
*wrapped* under the root key. Live key objects never reach storage.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_id: str
    account_id: str
    region: str
    arn: str
    description: str
    key_usage: str  # ENCRYPT_DECRYPT, SIGN_VERIFY, ...
    key_spec: str  # SYMMETRIC_DEFAULT, RSA_2048, ...
    origin: str  # AWS_KMS, EXTERNAL, ...
    key_manager: str  # CUSTOMER or AWS
    key_state: str  # Enabled, Disabled, PendingDeletion, PendingImport, ...
    creation_date: float  # epoch seconds
    multi_region: bool
    policy: str
    current_version_id: str | None  # hex of the 16-byte backing version id; None while PendingImport
    deletion_date: float | None = None
    pending_window_days: int | None = None
    rotation_enabled: bool = False
    rotation_period_days: int | None = None
    next_rotation_date: float | None = None
    # JSON object: the unique id (AIDA...) of each user ARN the policy names, bound when the policy was stored
    # (operations/principal_ids.py); a user ARN missing from it named no user then and matches nobody.
    policy_principal_ids: str | None = None


@dataclass(frozen=True, slots=True)
class KeyCount:
    """How many keys one account and region holds in one state (``openkms status``, ``openkms keys list``)."""

    account_id: str
    region: str
    key_state: str
    count: int


@dataclass(frozen=True, slots=True)
class KeyVersionRecord:
    key_id: str
    version_id: str  # 32 lowercase hex characters (16 bytes)
    created_at: float
    wrapped_material: bytes  # crypto.wrap output: AES-GCM under the root key, AAD binds key ARN + version id
    rotation_type: str = "INITIAL"  # INITIAL, AUTOMATIC, ON_DEMAND


@dataclass(frozen=True, slots=True)
class AliasRecord:
    account_id: str
    region: str
    alias_name: str
    target_key_id: str
    creation_date: float
    last_updated_date: float


@dataclass(frozen=True, slots=True)
class TagRecord:
    key_id: str
    tag_key: str
    tag_value: str


@dataclass(frozen=True, slots=True)
class UserRecord:
    account_id: str
    user_name: str
    user_id: str  # AIDA... like IAM's unique id
    arn: str
    created_at: float


@dataclass(frozen=True, slots=True)
class AccessKeyRecord:
    access_key_id: str
    account_id: str
    user_name: str
    wrapped_secret: bytes  # under the root key, AAD binds the access key id
    status: str  # Active or Inactive
    created_at: float


@dataclass(frozen=True, slots=True)
class ConsoleSessionRecord:
    """A signed-in console session (console/sessions.py): the digest of its cookie token, never the token."""

    token_digest: str  # hex SHA-256 of the random token the browser holds
    access_key_id: str  # the access key that signed in; the session acts as its user
    created_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class GroupRecord:
    account_id: str
    group_name: str
    group_id: str  # AGPA... like IAM's unique id
    arn: str  # arn:aws:iam::<account>:group/<name>
    created_at: float


@dataclass(frozen=True, slots=True)
class PrincipalAuthorization:
    """Everything identity-based authorisation needs about one user, read in one snapshot.

    ``policies`` holds the JSON texts of the user's inline policies (by policy name), then those of its
    groups (by group name, then policy name); ``group_names`` every group the user is in, with or without
    policies.
    """

    user: UserRecord
    tags: dict[str, str]
    group_names: tuple[str, ...]
    policies: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GrantRecord:
    """A KMS grant. ``operations`` are KMS operation names (``Decrypt``...); ``constraints`` is the JSON of
    AWS ``GrantConstraints`` (``EncryptionContextEquals``/``EncryptionContextSubset``) or None.

    ``grantee_principal_id`` and ``retiring_principal_id`` bind a user principal to the unique id of the user
    it named at CreateGrant (``""`` when no such user existed: it matches nobody); None for a principal that
    is not a user (an account, a service), which matches by ARN."""

    key_id: str
    grant_id: str  # 64 lowercase hex characters, unique across keys
    account_id: str  # the key's account
    name: str | None
    grantee_principal: str  # an ARN
    retiring_principal: str | None
    operations: tuple[str, ...]
    constraints: str | None
    issuing_principal: str
    creation_date: float
    grant_token: str
    grantee_principal_id: str | None = None
    retiring_principal_id: str | None = None


@dataclass(frozen=True, slots=True)
class SealRecord:
    """How the root key is sealed: the provider kind, its public parameters and the wrapped root key."""

    kind: str  # "keyfile" or "passphrase"
    params: str  # JSON text: KDF salt and cost, never a secret
    wrapped_root_key: bytes
    created_at: float


# -- key import


@dataclass(frozen=True, slots=True)
class ImportedMaterialRecord:
    """What is known of a key's imported material, kept while the material itself comes and goes.

    ``version_id`` is the key version the material always lives in (ciphertexts name it); ``fingerprint`` is a
    one-way commitment to the material (crypto/key_import.material_fingerprint), never the material. The
    material is present exactly when the key version row exists.
    """

    key_id: str
    version_id: str  # 32 lowercase hex characters
    fingerprint: bytes
    expiration_model: str  # KEY_MATERIAL_EXPIRES or KEY_MATERIAL_DOES_NOT_EXPIRE (of the latest import)
    valid_to: float | None  # epoch seconds; None unless KEY_MATERIAL_EXPIRES
    description: str | None  # KeyMaterialDescription (symmetric keys only)
    imported_at: float


@dataclass(frozen=True, slots=True)
class KeyMaterialRecord:
    """One key material imported into a symmetric EXTERNAL key, current or not (rotating imported material).

    ``rotated_at`` is None while the material waits for RotateKeyOnDemand (KeyMaterialState PENDING_ROTATION);
    for the first material it is its import time. The material itself lives in the key version ``version_id``.
    """

    key_id: str
    version_id: str  # 32 lowercase hex characters
    fingerprint: bytes
    expiration_model: str  # as imported; copied to ImportedMaterialRecord when the material becomes current
    valid_to: float | None
    description: str | None
    imported_at: float
    rotated_at: float | None


@dataclass(frozen=True, slots=True)
class JobLeaseRecord:
    """Who may run one background job now, and when it may run next (jobs/scheduler.py).

    Times are epoch seconds of the nodes' wall clocks (not the injected business clock): a lease is about
    liveness. ``holder`` is empty until a node first claims the job.
    """

    job_name: str
    holder: str
    lease_until: float
    next_run_at: float
    last_started_at: float | None
    last_finished_at: float | None
    runs: int
    failures: int
