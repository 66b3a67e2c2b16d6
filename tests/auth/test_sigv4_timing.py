"""docs/tests.md C-5 (b) for SigV4, in-process: a signature wrong in its first hex digit and one wrong in its last are
refused alike and in the same time by :func:`openkms.auth.sigv4.verify`.

With an early-exit comparison a caller could forge a signature digit by digit. Samples: 200k per class
(``OPENKMS_TIMING_SAMPLES``/``OPENKMS_TIMING_SCALE``, see tests/timing.py). What it can see: swapping
``hmac.compare_digest`` for a byte-by-byte Python loop (1.5 us apart) is found at p ~ 0 with 20k samples, but
``==`` on 64 bytes (a memcmp, about a nanosecond apart against a 22 us verification) is not, even at 200k: that
is what C-5 (a)'s source scan is for.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest

from openkms.auth import sigv4
from openkms.errors import AuthError, InvalidSignatureException
from tests import timing
from tests.auth.test_sigv4_negative import boto_signed, header, lookup, set_auth_params, signed_at

SAMPLES_PER_CLASS = 200_000  # docs/tests.md C-5 (b)
THRESHOLD = 0.001
NAMES = ("first-digit-wrong", "last-digit-wrong")


def _other_digit(digit: str) -> str:
    return f"{(int(digit, 16) + 1) % 16:x}"


def _requests() -> tuple[sigv4.SignedRequest, dict[str, sigv4.SignedRequest]]:
    good = boto_signed()
    auth = header(good, "authorization")
    signature = auth.rsplit("Signature=", 1)[1]
    assert len(signature) == 64 and auth.endswith(signature)
    first = _other_digit(signature[0]) + signature[1:]
    last = signature[:-1] + _other_digit(signature[-1])
    prefix = auth[: -len(signature)]
    return good, {NAMES[0]: set_auth_params(good, prefix + first), NAMES[1]: set_auth_params(good, prefix + last)}


def _outcome(request: sigv4.SignedRequest, now: float) -> tuple[str, str, int, str] | None:
    try:
        sigv4.verify(request, lookup, now)
    except AuthError as error:
        return (type(error).__name__, error.code, error.status, error.message)
    return None


def test_wrong_signatures_get_one_identical_error() -> None:
    good, wrong = _requests()
    now = signed_at(good)
    assert _outcome(good, now) is None
    errors = {_outcome(request, now) for request in wrong.values()}
    default = InvalidSignatureException()
    assert errors == {("InvalidSignatureException", default.code, default.status, default.message)}, errors


def _copy(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")


def _fresh_call(template: sigv4.SignedRequest, now: float) -> Callable[[], None]:
    """Verify a fresh copy of ``template`` (see :func:`timing.interleaved_timings` on why fresh)."""
    request = sigv4.SignedRequest(
        _copy(template.method),
        _copy(template.path),
        _copy(template.query),
        [(_copy(name), _copy(value)) for name, value in template.headers],
        bytes(bytearray(template.body)),
    )

    def call() -> None:
        try:
            sigv4.verify(request, lookup, now)
        except AuthError:
            pass

    return call


@pytest.mark.slow
@pytest.mark.timing
def test_first_and_last_digit_wrong_are_not_separable() -> None:
    good, wrong = _requests()
    now = signed_at(good)
    distinct = {_outcome(request, now) for request in wrong.values()}
    assert len(distinct) == 1, distinct
    factories = {name: functools.partial(_fresh_call, wrong[name], now) for name in NAMES}
    samples = timing.interleaved_timings(factories, timing.sample_count(SAMPLES_PER_CLASS), warmup=2_000)
    result = timing.compare(samples, *NAMES)
    print("\n" + timing.report("C-5 (b) SigV4 verify", samples, [result], len(distinct)))
    assert not result.separable(THRESHOLD), result
