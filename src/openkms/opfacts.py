"""What is true of each KMS API operation besides its shapes, declared once for every operation of the API.

botocore's model (``apimodel``) gives an operation's shapes; the facts here are the rest that code keys off an
operation's name: whether it changes state (CloudTrail's ``readOnly``), whether our handler may hold a CPU for
long, which parameter carries the encryption context an action's conditions test, which parameters may name
an AWS managed key created on first use, and a pricing class that overrides the key's.

Why a table in a leaf module rather than arguments of ``@operation``: the audit layer needs ``mutating`` for
every record, in every process (the CLI and tests build records without importing the operations), and for the
operations openkms does not implement (their failures are recorded too), while ``audit`` must not import
``operations``. A table filled by decorators would be complete only after every operation module was imported.
Here both layers read one declaration; ``operations/registry.py`` refuses a handler for an undeclared name, and
``tests/test_opfacts.py`` checks the table against the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

ENCRYPTION_CONTEXT = "EncryptionContext"


@dataclass(frozen=True, slots=True)
class OperationFacts:
    name: str
    mutating: bool = False  # changes state: CloudTrail's readOnly is false and the response is recorded
    slow: bool = False  # may hold a CPU for long (key generation): the server runs it off the event loop
    # (action, parameter) where an action finds the encryption context its conditions and grant constraints
    # test, when not in EncryptionContext (ReEncrypt's two actions).
    context_parameters: tuple[tuple[str, str], ...] = ()
    # Parameters that may name ``alias/aws/<service>``: the AWS managed key is created before the handler runs
    # if it does not exist yet (operations/managed_keys.py).
    managed_key_parameters: tuple[str, ...] = ()
    usage_family: str | None = None  # the pricing class of every call, whatever the key (audit/events.py)

    def context_parameter(self, action: str) -> str:
        """The request parameter that holds the encryption context ``action`` (``kms:...``) is tested on."""
        for named, parameter in self.context_parameters:
            if named == action:
                return parameter
        return ENCRYPTION_CONTEXT


def _table(facts: Iterable[OperationFacts]) -> Mapping[str, OperationFacts]:
    table: dict[str, OperationFacts] = {}
    for fact in facts:
        if fact.name in table:
            raise RuntimeError(f"operation {fact.name} declared twice")
        table[fact.name] = fact
    return MappingProxyType(table)


_KEY_ID = ("KeyId",)
_DATA_KEY_PAIR = "generate_data_key_pair"

# Every operation of the KMS API (botocore's model), implemented or not.
FACTS: Mapping[str, OperationFacts] = _table(
    [
        OperationFacts("CancelKeyDeletion", mutating=True),
        OperationFacts("ConnectCustomKeyStore", mutating=True),
        OperationFacts("CreateAlias", mutating=True),
        OperationFacts("CreateCustomKeyStore", mutating=True),
        OperationFacts("CreateGrant", mutating=True),
        OperationFacts("CreateKey", mutating=True, slow=True),
        OperationFacts("Decapsulate"),
        OperationFacts("Decrypt"),
        OperationFacts("DeleteAlias", mutating=True),
        OperationFacts("DeleteCustomKeyStore", mutating=True),
        OperationFacts("DeleteImportedKeyMaterial", mutating=True),
        OperationFacts("DeriveSharedSecret"),
        OperationFacts("DescribeCustomKeyStores"),
        OperationFacts("DescribeKey", managed_key_parameters=_KEY_ID),
        OperationFacts("DisableKey", mutating=True),
        OperationFacts("DisableKeyRotation", mutating=True),
        OperationFacts("DisconnectCustomKeyStore", mutating=True),
        OperationFacts("EnableKey", mutating=True),
        OperationFacts("EnableKeyRotation", mutating=True),
        OperationFacts("Encapsulate"),
        OperationFacts("Encrypt", managed_key_parameters=_KEY_ID),
        OperationFacts("GenerateDataKey", managed_key_parameters=_KEY_ID),
        OperationFacts("GenerateDataKeyPair", slow=True, usage_family=_DATA_KEY_PAIR),
        OperationFacts("GenerateDataKeyPairWithoutPlaintext", slow=True, usage_family=_DATA_KEY_PAIR),
        OperationFacts("GenerateDataKeyWithoutPlaintext", managed_key_parameters=_KEY_ID),
        OperationFacts("GenerateMac"),
        OperationFacts("GenerateRandom"),
        OperationFacts("GetKeyLastUsage"),
        OperationFacts("GetKeyPolicy"),
        OperationFacts("GetKeyRotationStatus"),
        OperationFacts("GetParametersForImport", slow=True),
        OperationFacts("GetPublicKey"),
        OperationFacts("ImportKeyMaterial", mutating=True, slow=True),
        OperationFacts("ListAliases"),
        OperationFacts("ListGrants"),
        OperationFacts("ListKeyPolicies"),
        OperationFacts("ListKeyRotations"),
        OperationFacts("ListKeys"),
        OperationFacts("ListResourceTags"),
        OperationFacts("ListRetirableGrants"),
        OperationFacts("PutKeyPolicy", mutating=True),
        OperationFacts(
            "ReEncrypt",
            context_parameters=(
                ("kms:ReEncryptFrom", "SourceEncryptionContext"),
                ("kms:ReEncryptTo", "DestinationEncryptionContext"),
            ),
            managed_key_parameters=("SourceKeyId", "DestinationKeyId"),
        ),
        OperationFacts("ReplicateKey", mutating=True),
        OperationFacts("RetireGrant", mutating=True),
        OperationFacts("RevokeGrant", mutating=True),
        OperationFacts("RotateKeyOnDemand", mutating=True),
        OperationFacts("ScheduleKeyDeletion", mutating=True),
        OperationFacts("Sign"),
        OperationFacts("TagResource", mutating=True),
        OperationFacts("UntagResource", mutating=True),
        OperationFacts("UpdateAlias", mutating=True),
        OperationFacts("UpdateCustomKeyStore", mutating=True),
        OperationFacts("UpdateKeyDescription", mutating=True),
        OperationFacts("UpdatePrimaryRegion", mutating=True),
        OperationFacts("Verify"),
        OperationFacts("VerifyMac"),
    ]
)

# What a name outside the API (an admin operation, "Unknown") has: it only reads.
NONE = OperationFacts("")

MUTATING: frozenset[str] = frozenset(name for name, fact in FACTS.items() if fact.mutating)


def of(name: str | None) -> OperationFacts:
    """The facts of the operation ``name``; a name outside the KMS API reads and has no other fact."""
    return FACTS.get(name, NONE) if name is not None else NONE
