"""The KMS model as loaded from botocore: operations, shapes, sensitivity, declared errors."""

from __future__ import annotations

import pytest

from openkms import apimodel as model


def test_operations_come_from_the_model() -> None:
    names = model.operation_names()
    assert {"Encrypt", "Decrypt", "CreateKey", "ListKeys", "CreateAlias", "GenerateDataKey"} <= names
    assert "encrypt" not in names  # names are case-sensitive, as in X-Amz-Target
    assert model.operation_names() is names  # loaded once


def test_input_and_output_shapes() -> None:
    assert model.input_shape("Encrypt") == "EncryptRequest"
    assert model.output_shape("Encrypt") == "EncryptResponse"
    assert model.shape("EncryptRequest")["type"] == "structure"
    assert set(model.shape("EncryptRequest")["required"]) == {"KeyId", "Plaintext"}
    with pytest.raises(KeyError):
        model.input_shape("NoSuchOperation")


def test_every_operation_has_a_structure_input() -> None:
    for name in model.operation_names():
        shape_name = model.input_shape(name)
        assert shape_name is not None, name
        assert model.shape(shape_name)["type"] == "structure", name


def test_sensitive_shapes() -> None:
    assert model.is_sensitive("PlaintextType")
    assert model.is_sensitive("KeyStorePasswordType")
    assert not model.is_sensitive("KeyIdType")
    assert not model.is_sensitive("CiphertextType")


def test_declared_errors() -> None:
    encrypt = model.declared_errors("Encrypt")
    assert {"NotFoundException", "DisabledException", "KMSInternalException"} <= encrypt
    assert "AlreadyExistsException" not in encrypt
    assert "AlreadyExistsException" in model.declared_errors("CreateAlias")


def test_declared_errors_are_exception_shapes() -> None:
    for name in model.operation_names():
        for code in model.declared_errors(name):
            assert model.shape(code).get("exception") is True, (name, code)


def test_common_errors_are_not_per_operation_noise() -> None:
    assert {"ValidationException", "SerializationException", "UnknownOperationException"} <= model.COMMON_ERRORS
