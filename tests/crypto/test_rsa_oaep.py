"""RSAES-OAEP with AWS's parameters, and docs/tests.md C-4 at the crypto layer: every malformed ciphertext fails
alike."""

from __future__ import annotations

import functools
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from openkms.crypto import keypairs, rsa_oaep
from openkms.crypto.errors import DecryptionError

SPECS = ["RSA_2048", "RSA_3072", "RSA_4096"]
ALGORITHMS = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
# AWS's documented maximum plaintext per key spec and algorithm.
AWS_MAX_PLAINTEXT = {
    ("RSA_2048", "RSAES_OAEP_SHA_1"): 214,
    ("RSA_2048", "RSAES_OAEP_SHA_256"): 190,
    ("RSA_3072", "RSAES_OAEP_SHA_1"): 342,
    ("RSA_3072", "RSAES_OAEP_SHA_256"): 318,
    ("RSA_4096", "RSAES_OAEP_SHA_1"): 470,
    ("RSA_4096", "RSAES_OAEP_SHA_256"): 446,
}
SHA1 = hashes.SHA1()  # noqa: S303 - RSAES_OAEP_SHA_1 is an AWS algorithm
PYCA_HASH = {"RSAES_OAEP_SHA_1": SHA1, "RSAES_OAEP_SHA_256": hashes.SHA256()}


@functools.cache
def _private(spec: str) -> rsa.RSAPrivateKey:
    key = keypairs.load_private_key(spec, keypairs.generate_private_key(spec))
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def _pyca_oaep(
    algorithm: str, mgf_hash: hashes.HashAlgorithm | None = None, label: bytes | None = None
) -> padding.OAEP:
    hash_algorithm = PYCA_HASH[algorithm]
    return padding.OAEP(mgf=padding.MGF1(mgf_hash or hash_algorithm), algorithm=hash_algorithm, label=label)


@pytest.mark.parametrize(("spec", "algorithm"), sorted(AWS_MAX_PLAINTEXT))
def test_max_plaintext_size_is_awss(spec: str, algorithm: str) -> None:
    private = _private(spec)
    expected = AWS_MAX_PLAINTEXT[spec, algorithm]
    assert rsa_oaep.max_plaintext_size(private, algorithm) == expected
    assert rsa_oaep.max_plaintext_size(private.public_key(), algorithm) == expected
    longest = os.urandom(expected)
    assert rsa_oaep.decrypt(private, algorithm, rsa_oaep.encrypt(private.public_key(), algorithm, longest)) == longest
    with pytest.raises(ValueError):
        rsa_oaep.encrypt(private.public_key(), algorithm, longest + b"x")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("spec", SPECS)
def test_round_trips_both_ways_with_plain_pyca(spec: str, algorithm: str) -> None:
    private = _private(spec)
    for plaintext in (b"", b"\x00", b"secret data key material 32 byte"):
        ours = rsa_oaep.encrypt(private.public_key(), algorithm, plaintext)
        assert len(ours) == private.key_size // 8
        assert private.decrypt(ours, _pyca_oaep(algorithm)) == plaintext
        theirs = private.public_key().encrypt(plaintext, _pyca_oaep(algorithm))
        assert rsa_oaep.decrypt(private, algorithm, theirs) == plaintext
    assert rsa_oaep.encrypt(private.public_key(), algorithm, b"x") != rsa_oaep.encrypt(
        private.public_key(), algorithm, b"x"
    )  # randomized


def test_openssl_oaep_sha256_ciphertext_decrypts(tmp_path: Path) -> None:
    """openssl's OAEP with SHA-256 for both label hash and MGF1 is AWS's RSAES_OAEP_SHA_256."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "the openssl command-line tool is needed for this independent check"
    private = _private("RSA_2048")
    pem = tmp_path / "pub.pem"
    pem.write_bytes(
        private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    (tmp_path / "msg").write_bytes(b"data key")
    options = ["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"]
    args = [openssl, "pkeyutl", "-encrypt", "-pubin", "-inkey", str(pem), "-in", str(tmp_path / "msg"), *options]
    done = subprocess.run([*args, "-out", str(tmp_path / "ct")], capture_output=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert rsa_oaep.decrypt(private, "RSAES_OAEP_SHA_256", (tmp_path / "ct").read_bytes()) == b"data key"
    with pytest.raises(DecryptionError):
        rsa_oaep.decrypt(private, "RSAES_OAEP_SHA_1", (tmp_path / "ct").read_bytes())


def test_mgf1_sha1_with_sha256_label_hash_is_not_awss() -> None:
    """Java's OAEPWithSHA-256AndMGF1Padding uses MGF1-SHA-1; AWS (and we) refuse such ciphertexts."""
    private = _private("RSA_2048")
    java_style = private.public_key().encrypt(b"k", _pyca_oaep("RSAES_OAEP_SHA_256", mgf_hash=SHA1))
    with pytest.raises(DecryptionError):
        rsa_oaep.decrypt(private, "RSAES_OAEP_SHA_256", java_style)


# --- C-4: one error for every malformed ciphertext --------------------------------------------------------------


def _malformed(private: rsa.RSAPrivateKey, algorithm: str) -> dict[str, bytes]:
    """Malformed-ciphertext classes of docs/tests.md C-4 and more, for ``algorithm`` under ``private``."""
    public = private.public_key()
    numbers = public.public_numbers()
    n, e, size = numbers.n, numbers.e, private.key_size // 8
    valid = public.encrypt(b"k" * 16, _pyca_oaep(algorithm))
    other_algorithm = "RSAES_OAEP_SHA_1" if algorithm == "RSAES_OAEP_SHA_256" else "RSAES_OAEP_SHA_256"

    def raw_rsa(m: int) -> bytes:  # textbook RSA on a chosen encoded message, to forge padding classes
        return pow(m, e, n).to_bytes(size, "big")

    def flipped(index: int) -> bytes:
        copy = bytearray(valid)
        copy[index] ^= 0x01
        return bytes(copy)

    random_below_n = int.from_bytes(os.urandom(size), "big") % n
    return {
        "random-right-length": random_below_n.to_bytes(size, "big"),
        "bad-leading-byte": raw_rsa((1 << (8 * (size - 1))) + int.from_bytes(os.urandom(size - 2), "big")),
        "wrong-label-hash": public.encrypt(b"k" * 16, _pyca_oaep(other_algorithm)),
        "non-empty-label": public.encrypt(b"k" * 16, _pyca_oaep(algorithm, label=b"label")),
        "flipped-first-byte": flipped(0),
        "flipped-middle-byte": flipped(size // 2),
        "flipped-last-byte": flipped(-1),
        "truncated": valid[:-1],
        "short": valid[: size // 2],
        "too-long": valid + b"\x00",
        "leading-zero-added": b"\x00" + valid,
        "empty": b"",
        "zero": bytes(size),
        "one": (1).to_bytes(size, "big"),
        "n-minus-1": (n - 1).to_bytes(size, "big"),
        "n": n.to_bytes(size, "big"),
        "n-plus-1": (n + 1).to_bytes(size, "big"),
        "all-ff": b"\xff" * size,
        "valid-plus-n": ((int.from_bytes(valid, "big") + n) % (1 << (8 * size))).to_bytes(size, "big"),
    }


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("spec", SPECS)
def test_every_malformed_ciphertext_fails_with_one_identical_error(spec: str, algorithm: str) -> None:
    private = _private(spec)
    errors: dict[str, DecryptionError] = {}
    for name, ciphertext in _malformed(private, algorithm).items():
        with pytest.raises(DecryptionError) as raised:
            rsa_oaep.decrypt(private, algorithm, ciphertext)
        errors[name] = raised.value
    assert {type(error) for error in errors.values()} == {DecryptionError}
    assert {(str(error), repr(error), error.args) for error in errors.values()} == {("", "DecryptionError()", ())}
    # pyca's own message ("Ciphertext length must be equal to key size.") must not ride along in a traceback.
    assert all(error.__cause__ is None and error.__suppress_context__ for error in errors.values())


def test_caller_errors_are_value_errors_not_decryption_errors() -> None:
    ciphertext = bytes(256)
    for call in (
        lambda: rsa_oaep.decrypt(_private("RSA_2048"), "RSAES_OAEP_SHA_384", ciphertext),
        lambda: rsa_oaep.decrypt(_private("RSA_2048"), "SYMMETRIC_DEFAULT", ciphertext),
        lambda: rsa_oaep.decrypt(_ec_key(), "RSAES_OAEP_SHA_256", ciphertext),
        lambda: rsa_oaep.encrypt(_ec_key().public_key(), "RSAES_OAEP_SHA_256", b"x"),
        lambda: rsa_oaep.encrypt(_private("RSA_2048").public_key(), "RSAES_PKCS1_V1_5", b"x"),
        lambda: rsa_oaep.max_plaintext_size(_ec_key(), "RSAES_OAEP_SHA_256"),
    ):
        with pytest.raises(ValueError):
            call()


def _ec_key() -> keypairs.PrivateKey:
    return keypairs.load_private_key("ECC_NIST_P256", keypairs.generate_private_key("ECC_NIST_P256"))


def test_every_rejection_costs_one_private_key_operation() -> None:
    """The timing half of C-4, coarsely: no class is rejected much faster than a padding failure.

    Wrong lengths and integers not below n are public facts, but without the deliberate private-key operation
    they would be rejected about 100 times faster and be trivially separable. This compares medians of
    interleaved rounds, so it catches a missing RSA operation, not nanosecond leaks (that is C-4's statistical
    test over the API).
    """
    private = _private("RSA_2048")
    classes = _malformed(private, "RSAES_OAEP_SHA_256")
    classes["valid"] = private.public_key().encrypt(b"k" * 16, _pyca_oaep("RSAES_OAEP_SHA_256"))
    samples: dict[str, list[int]] = {name: [] for name in classes}
    for _ in range(40):
        for name, ciphertext in classes.items():
            start = time.perf_counter_ns()
            try:
                rsa_oaep.decrypt(private, "RSAES_OAEP_SHA_256", ciphertext)
            except DecryptionError:
                pass
            samples[name].append(time.perf_counter_ns() - start)
    reference = statistics.median(samples["random-right-length"])
    ratios = {name: statistics.median(times) / reference for name, times in samples.items()}
    assert all(0.5 < ratio < 2.0 for ratio in ratios.values()), ratios


def _bytecode_trace(call: Callable[[], object]) -> tuple[tuple[str, int], ...]:
    """The (event, bytecode offset) sequence :func:`rsa_oaep.decrypt` executes during ``call()``."""
    code = rsa_oaep.decrypt.__code__
    trace: list[tuple[str, int]] = []

    def local(frame: FrameType, event: str, _arg: Any) -> Any:
        trace.append((event, frame.f_lasti))
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code is not code:
            return None
        frame.f_trace_opcodes = True
        return local(frame, event, arg)

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        call()
    except DecryptionError:
        pass
    finally:
        sys.settrace(previous)
    assert trace, "rsa_oaep.decrypt was not traced"
    return tuple(trace)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_rejection_runs_the_same_bytecode(algorithm: str) -> None:
    """C-4 found wrong-length ciphertexts rejected about 3 us faster than padding failures (of ~450 us), enough
    for 20k samples to separate them at p < 1e-40: ``len(c) == k and int(c) < n`` skipped the range check,
    and with it the costly ``public_numbers()``, when the length was wrong. Every rejection must now take the
    same path through the wrapper, instruction for instruction; below it, the same k-byte private-key
    operation and OpenSSL's constant-time OAEP check. (The statistical test is tests/operations/
    test_decrypt_timing.py.)"""
    private = _private("RSA_2048")
    traces = {
        name: _bytecode_trace(functools.partial(rsa_oaep.decrypt, private, algorithm, ciphertext))
        for name, ciphertext in _malformed(private, algorithm).items()
    }
    reference = traces["random-right-length"]
    differing = sorted(name for name, trace in traces.items() if trace != reference)
    assert differing == [], f"these take another path through rsa_oaep.decrypt than a padding failure: {differing}"


# --- properties -------------------------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(data=st.data(), algorithm=st.sampled_from(ALGORITHMS))
def test_property_round_trip_up_to_the_maximum(data: st.DataObject, algorithm: str) -> None:
    private = _private("RSA_2048")
    limit = rsa_oaep.max_plaintext_size(private, algorithm)
    plaintext = data.draw(st.binary(max_size=limit))
    assert (
        rsa_oaep.decrypt(private, algorithm, rsa_oaep.encrypt(private.public_key(), algorithm, plaintext)) == plaintext
    )


@settings(max_examples=100, deadline=None)
@given(ciphertext=st.one_of(st.binary(max_size=300), st.binary(min_size=256, max_size=256)))
def test_property_arbitrary_bytes_fail_only_with_decryption_error(ciphertext: bytes) -> None:
    with pytest.raises(DecryptionError):
        rsa_oaep.decrypt(_private("RSA_2048"), "RSAES_OAEP_SHA_256", ciphertext)
