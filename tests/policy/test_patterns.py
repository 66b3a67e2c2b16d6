"""Wildcard matching (policy/patterns.py): AWS's ``*``/``?`` semantics, in time linear in the value.

Issue 15 item 2: ``*`` compiled to a backtracking ``.*`` let a caller with no rights hang a worker for 20 s
with ``"kms:" + "*" * 22 + "x"`` in a CreateKey policy (the lockout check ran before authorisation).
"""

from __future__ import annotations

import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from openkms.policy.patterns import Wildcard, tokenize, tokens_match, wildcard_match


def _reference(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """The obvious regex translation, trusted on small inputs only."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch(regex, value, flags) is not None


_ALPHABET = st.sampled_from("ab:/*?Aé\n")


@settings(max_examples=3000, deadline=None)
@given(st.text(_ALPHABET, max_size=10), st.text(st.sampled_from("ab:/Aé\n*?"), max_size=12), st.booleans())
def test_agrees_with_the_regex_translation(pattern: str, value: str, ignore_case: bool) -> None:
    tokens = tokenize(pattern, {}, variables=False)
    assert tokens is not None
    assert tokens_match(tokens, value, ignore_case=ignore_case) == _reference(pattern, value, ignore_case)


def test_examples() -> None:
    assert wildcard_match("kms:*", "kms:Encrypt", {}, variables=False)
    assert wildcard_match("kms:*crypt", "kms:ReEncrypt", {}, variables=False)
    assert not wildcard_match("kms:*crypt", "kms:CreateKey", {}, variables=False)
    assert wildcard_match("kms:?ecrypt", "kms:Decrypt", {}, variables=False)
    assert wildcard_match("*", "", {}, variables=False)
    assert wildcard_match("a*b*c", "abc", {}, variables=False)
    assert not wildcard_match("a*b*c", "acb", {}, variables=False)
    assert wildcard_match("a*a", "aa", {}, variables=False)
    assert not wildcard_match("a*a", "a", {}, variables=False)


def _seconds(pattern: str, value: str) -> float:
    tokens = tokenize(pattern, {}, variables=False)
    assert tokens is not None
    started = time.perf_counter()
    assert not tokens_match(tokens, value)
    return time.perf_counter() - started


def test_sixty_four_stars_and_a_miss_cost_microseconds() -> None:
    """The issue's attack, with 64 stars (the old matcher needed 20 s for 22) against a long value."""
    assert _seconds("kms:" + "*" * 64 + "x", "kms:" + "a" * 4096) < 0.05
    assert _seconds("*a" * 64 + "x", "a" * 4096) < 0.5  # many non-empty pieces: still about n x m at worst
    assert _seconds("?*" * 64 + "x", "a" * 4096) < 0.05


def test_compiled_patterns_are_cached_not_rebuilt() -> None:
    tokens = (*"kms:", Wildcard.STAR)
    assert tokens_match(tokens, "kms:Decrypt")
    assert tokens_match(tokens, "kms:Encrypt")
