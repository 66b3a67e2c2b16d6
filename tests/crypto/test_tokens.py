"""Console session tokens: random, digested for storage, with a CSRF token only the token's holder can make."""

from __future__ import annotations

from openkms.crypto import tokens


def test_tokens_are_random_url_safe_and_256_bits() -> None:
    made = {tokens.new_token() for _ in range(200)}
    assert len(made) == 200
    for token in made:
        assert len(token) == 43 and all(c.isalnum() or c in "-_" for c in token)


def test_the_digest_is_sha256_hex_and_differs_from_the_token() -> None:
    token = tokens.new_token()
    digest = tokens.token_digest(token)
    assert len(digest) == 64 and token not in digest
    assert tokens.token_digest(token) == digest and tokens.token_digest(token + "x") != digest


def test_a_csrf_token_matches_only_its_own_session() -> None:
    mine, other = tokens.new_token(), tokens.new_token()
    csrf = tokens.csrf_token(mine)
    assert tokens.csrf_matches(mine, csrf)
    assert not tokens.csrf_matches(other, csrf)
    assert not tokens.csrf_matches(mine, tokens.csrf_token(other))
    assert not tokens.csrf_matches(mine, "")
    assert not tokens.csrf_matches(mine, csrf[:-1])
    assert not tokens.csrf_matches(mine, "!!not base64!!")
