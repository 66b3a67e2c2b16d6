"""The operations' facts (openkms/opfacts.py): one declaration per operation of the API, which the registry, the
audit layer and authorisation all read."""

from __future__ import annotations

import json

import pytest

from openkms import apimodel, opfacts
from openkms.audit import events
from openkms.context import Principal
from openkms.operations import registry

PRINCIPAL = Principal("111122223333", "arn:aws:iam::111122223333:user/f", "f", "AKIAFACTSTESTING0001", "AIDAF")


def test_every_operation_of_the_model_is_declared_and_nothing_else() -> None:
    assert set(opfacts.FACTS) == set(apimodel.operation_names())
    assert registry.implemented_operations() <= set(opfacts.FACTS)


def test_a_handler_for_an_undeclared_name_is_refused_at_registration() -> None:
    with pytest.raises(RuntimeError, match="no facts declared"):
        registry.operation("FrobnicateKey")


def test_the_registry_answers_from_the_declaration() -> None:
    assert registry.is_slow("CreateKey") and registry.is_slow("GenerateDataKeyPair")
    assert not registry.is_slow("Encrypt") and not registry.is_slow("NoSuchOperation")
    assert registry.facts_for("ReEncrypt").context_parameter("kms:ReEncryptTo") == "DestinationEncryptionContext"
    assert registry.facts_for("Encrypt").context_parameter("kms:Encrypt") == "EncryptionContext"
    assert registry.facts_for(None) is opfacts.NONE and registry.facts_for("LookupEvents") is opfacts.NONE


@pytest.mark.parametrize(
    ("operation", "read_only"),
    [("CreateCustomKeyStore", False), ("UpdatePrimaryRegion", False), ("DescribeCustomKeyStores", True)],
)
def test_unimplemented_operations_are_recorded_with_aws_s_read_only(operation: str, read_only: bool) -> None:
    assert registry.handler_for(operation) is None
    call = events.Call("r-1", 1_790_000_000.0, "127.0.0.1", "t", "us-east-1", operation, PRINCIPAL, None, {})
    event = json.loads(events.build(call, "UnsupportedOperationException", "not supported").event)
    assert event["readOnly"] is read_only


def test_data_key_pairs_are_priced_apart_whatever_the_key() -> None:
    assert events.usage_family("GenerateDataKeyPair", "SYMMETRIC_DEFAULT") == "generate_data_key_pair"
    assert events.usage_family("GenerateDataKey", "SYMMETRIC_DEFAULT") == "symmetric"
