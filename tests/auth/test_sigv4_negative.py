"""S-2: requests signed by botocore (the oracle), then mutated one bug class at a time; every mutant must fail.

botocore signs at the real time, so each test takes ``now`` from the signed X-Amz-Date (plus the skew under test)
instead of patching botocore's clock. Where a mutant needs a *valid* signature over a bad shape (host unsigned,
scope date off, ...) it is signed with our own signer, whose agreement with botocore is checked first.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from openkms.auth import sigv4
from openkms.errors import (
    AuthError,
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

ACCESS_KEY = "AKIAOPENKMSEXAMPLE01"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
OTHER_SECRET = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
HOST = "kms.us-east-1.amazonaws.com"
BODY = json.dumps({"KeyId": "alias/app", "Plaintext": "aGVsbG8="}).encode()


def lookup(access_key_id: str) -> str:
    if access_key_id != ACCESS_KEY:
        raise UnrecognizedClientException()
    return SECRET


def lookup_other(_access_key_id: str) -> str:
    return OTHER_SECRET


def boto_signed(
    body: bytes = BODY,
    extra: dict[str, str] | None = None,
    service: str = "kms",
    region: str = "us-east-1",
    token: str | None = None,
) -> sigv4.SignedRequest:
    """Sign like boto3's KMS client, then add what the HTTP stack adds unsigned (Host, Content-Length)."""
    headers = {
        "X-Amz-Target": "TrentService.Encrypt",
        "Content-Type": "application/x-amz-json-1.1",
        "User-Agent": "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux",
        **(extra or {}),
    }
    aws = AWSRequest(method="POST", url=f"https://{HOST}/", data=body, headers=headers)
    SigV4Auth(Credentials(ACCESS_KEY, SECRET, token), service, region).add_auth(aws)
    wire = [*aws.headers.items(), ("Host", HOST), ("Content-Length", str(len(body)))]
    return sigv4.SignedRequest("POST", "/", "", wire, body)


def header(request: sigv4.SignedRequest, name: str) -> str:
    return next(v for n, v in request.headers if n.lower() == name)


def with_header(request: sigv4.SignedRequest, name: str, value: str | None) -> sigv4.SignedRequest:
    """Replace (or with ``None`` drop) every header called ``name``; append it if absent."""
    kept = [(n, v) for n, v in request.headers if n.lower() != name.lower()]
    return replace(request, headers=kept if value is None else [*kept, (name, value)])


def signed_at(request: sigv4.SignedRequest) -> float:
    return sigv4.parse_amz_date(header(request, "x-amz-date"))


def our_signed(
    request: sigv4.SignedRequest,
    signed: list[str],
    scope_date: str | None = None,
    service: str = "kms",
    terminator: str = sigv4.TERMINATOR,
) -> sigv4.SignedRequest:
    """Re-sign ``request`` over exactly ``signed`` headers with a chosen scope, to build valid-but-bad shapes."""
    amz_date = header(request, "x-amz-date")
    credential = sigv4.Credential(ACCESS_KEY, scope_date or amz_date[:8], "us-east-1", service, terminator)
    canonical = sigv4.canonical_request(request, signed)
    signature = sigv4.compute_signature(SECRET, credential, sigv4.string_to_sign(amz_date, credential.scope, canonical))
    value = (
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{credential.scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={signature}"
    )
    return with_header(request, "Authorization", value)


def set_auth_params(request: sigv4.SignedRequest, text: str) -> sigv4.SignedRequest:
    return with_header(request, "Authorization", text)


@dataclass(frozen=True)
class Mutant:
    label: str
    request: sigv4.SignedRequest
    expected: type[AuthError]
    lookup: Callable[[str], str] = lookup
    skew: float = 0.0
    now_from: sigv4.SignedRequest | None = None


def build_mutants() -> list[Mutant]:
    good = boto_signed()
    auth = header(good, "authorization")
    cred, signed_headers, signature = (part.split("=", 1)[1] for part in auth.split(" ", 1)[1].split(", "))
    signature_param = f"Signature={signature}"
    default_signed = signed_headers.split(";")
    # A 900 s skew either way is accepted; see test_skew_boundaries. Everything here must be rejected.
    mutants = [
        Mutant("fabricated signature", set_auth_params(good, auth.replace(signature, secrets.token_hex(32))), Inv),
        Mutant("signature uppercased", set_auth_params(good, auth.replace(signature, signature.upper())), Inv),
        Mutant("signature not ascii", set_auth_params(good, auth.replace(signature, "é" * 64)), Inv),
        Mutant("signature truncated", set_auth_params(good, auth.replace(signature, signature[:-2])), Inv),
        Mutant("another access key's secret", good, Inv, lookup=lookup_other),
        Mutant("unknown access key", set_auth_params(good, auth.replace(ACCESS_KEY, "AKIAUNKNOWN")), Unrec),
        Mutant("host not signed", our_signed(good, [h for h in default_signed if h != "host"]), Inv),
        Mutant("x-amz-date not signed", our_signed(good, [h for h in default_signed if h != "x-amz-date"]), Inv),
        Mutant("unsigned x-amz-foo added", with_header(good, "X-Amz-Foo", "bar"), Inv),
        Mutant("unsigned x-amz-security-token added", with_header(good, "X-Amz-Security-Token", "tok"), Inv),
        Mutant("signed header absent", our_signed(good, sorted([*default_signed, "x-amz-foo"])), Inv),
        Mutant("body changed after signing", replace(good, body=BODY.replace(b"app", b"apq")), Inv),
        Mutant("body extended after signing", replace(good, body=BODY + b" "), Inv),
        Mutant("header value changed", with_header(good, "X-Amz-Target", "TrentService.Decrypt"), Inv),
        Mutant("method changed", replace(good, method="PUT"), Inv),
        Mutant("path changed", replace(good, path="/x"), Inv),
        Mutant("query added", replace(good, query="a=b"), Inv),
        Mutant(
            "x-amz-content-sha256 of another body",
            replace(
                boto_signed(extra={"X-Amz-Content-SHA256": hashlib.sha256(b"{}").hexdigest()}, body=b"{}"), body=BODY
            ),
            Inv,
        ),
        Mutant(
            "x-amz-content-sha256 UNSIGNED-PAYLOAD",
            boto_signed(extra={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}),
            Inv,
        ),
        Mutant("scope date != x-amz-date date", our_signed(good, default_signed, scope_date="20000101"), Inv),
        Mutant("wrong service in scope", boto_signed(service="kms2"), Inv),
        Mutant("wrong service, our signer", our_signed(good, default_signed, service="s3"), Inv),
        Mutant("wrong terminator", our_signed(good, default_signed, terminator="aws5_request"), Inv),
        Mutant("skew +901 s (request old)", good, Inv, skew=901),
        Mutant("skew -901 s (request in the future)", good, Inv, skew=-901),
        Mutant("no Authorization", with_header(good, "Authorization", None), Missing),
        Mutant("non-AWS4 Authorization", with_header(good, "Authorization", "Basic dXNlcjpwYXNz"), Missing),
        Mutant(
            "presigned query only",
            replace(
                with_header(good, "Authorization", None),
                query=f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={signature}",
            ),
            Missing,
        ),
        Mutant("two Authorization headers", replace(good, headers=[*good.headers, ("authorization", auth)]), Inc),
        Mutant("algorithm AWS4-HMAC-SHA512", set_auth_params(good, auth.replace("SHA256", "SHA512", 1)), Inc),
        Mutant("algorithm only", set_auth_params(good, "AWS4-HMAC-SHA256"), Inc),
        Mutant("no Signature", set_auth_params(good, auth.replace(f", {signature_param}", "")), Inc),
        Mutant("empty Signature", set_auth_params(good, auth.replace(signature_param, "Signature=")), Inc),
        Mutant("no Credential", set_auth_params(good, auth.replace(f"Credential={cred}, ", "")), Inc),
        Mutant("no SignedHeaders", set_auth_params(good, auth.replace(f"SignedHeaders={signed_headers}, ", "")), Inc),
        Mutant("param without '='", set_auth_params(good, auth.replace("Credential=", "Credential ")), Inc),
        Mutant("duplicate param", set_auth_params(good, f"{auth}, Signature={signature}"), Inc),
        Mutant("credential with 4 elements", set_auth_params(good, auth.replace("/kms/", "/")), Inc),
        Mutant("credential with empty element", set_auth_params(good, auth.replace("/us-east-1/", "//")), Inc),
        Mutant(
            "SignedHeaders not sorted", set_auth_params(good, auth.replace(signed_headers, "host;content-type")), Inc
        ),
        Mutant(
            "SignedHeaders uppercase", set_auth_params(good, auth.replace(signed_headers, signed_headers.upper())), Inc
        ),
        Mutant("SignedHeaders repeated", set_auth_params(good, auth.replace("host;", "host;host;")), Inc),
        Mutant("X-Amz-Date missing", with_header(good, "X-Amz-Date", None), Inc, now_from=good),
        Mutant(
            "X-Amz-Date repeated",
            replace(good, headers=[*good.headers, ("X-Amz-Date", header(good, "x-amz-date"))]),
            Inc,
        ),
    ]
    for bad_date in (
        "2026-11-28T13:45:24Z",
        "20261128T134524",
        "20261128 134524Z",
        "20261328T134524Z",
        "20260230T134524Z",
        "20261128T246000Z",
        "20261128T136000Z",
        "20261128T134560Z",
        "\uff12\uff10\uff12\uff161128T134524Z",  # fullwidth digits pass str.isdigit()
        "",
    ):
        mutant = our_signed(with_header(good, "X-Amz-Date", bad_date), default_signed)
        mutants.append(Mutant(f"X-Amz-Date {bad_date!r}", mutant, Inc, now_from=good))
    return mutants


Inv = InvalidSignatureException
Inc = IncompleteSignatureException
Missing = MissingAuthenticationTokenException
Unrec = UnrecognizedClientException
MUTANTS = build_mutants()


def run(mutant: Mutant) -> sigv4.VerifiedRequest:
    now = signed_at(mutant.now_from or mutant.request) + mutant.skew
    return sigv4.verify(mutant.request, mutant.lookup, now)


def test_botocore_signed_request_is_accepted_and_our_signer_agrees() -> None:
    good = boto_signed()
    verified = sigv4.verify(good, lookup, signed_at(good))
    assert (verified.access_key_id, verified.region, verified.security_token) == (ACCESS_KEY, "us-east-1", None)
    signed = header(good, "authorization").split("SignedHeaders=")[1].split(",")[0].split(";")
    assert header(our_signed(good, signed), "authorization") == header(good, "authorization")


def test_session_token_is_signed_and_returned() -> None:
    request = boto_signed(token="FQoGZXIvYXdzEXAMPLE")
    assert "x-amz-security-token" in header(request, "authorization")
    assert sigv4.verify(request, lookup, signed_at(request)).security_token == "FQoGZXIvYXdzEXAMPLE"


def test_region_is_returned_not_checked() -> None:
    """The server decides which regions it serves; verify only reports the signed one."""
    request = boto_signed(region="eu-west-9")
    assert sigv4.verify(request, lookup, signed_at(request)).region == "eu-west-9"


@pytest.mark.parametrize("skew", [0, 1, 899, 900, -1, -899, -900, 900.0])
def test_skew_boundaries_accepted(skew: float) -> None:
    good = boto_signed()
    sigv4.verify(good, lookup, signed_at(good) + skew)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.label for m in MUTANTS])
def test_mutant_rejected_with_aws_error(mutant: Mutant) -> None:
    with pytest.raises(AuthError) as caught:
        run(mutant)
    assert type(caught.value) is mutant.expected, caught.value.message


def test_no_mutant_accepted() -> None:
    accepted = []
    for mutant in MUTANTS:
        try:
            run(mutant)
        except AuthError:
            continue
        accepted.append(mutant.label)
    assert len(MUTANTS) >= 50
    assert accepted == []


def test_messages_never_echo_the_signature() -> None:
    for mutant in MUTANTS:
        auth = [v for n, v in mutant.request.headers if n.lower() == "authorization"]
        provided = auth[0].rsplit("Signature=", 1)[-1] if auth and "Signature=" in auth[0] else ""
        with pytest.raises(AuthError) as caught:
            run(mutant)
        if len(provided) >= 8:
            assert provided not in caught.value.message, mutant.label
        assert len(caught.value.message) < 600, mutant.label


def test_missing_parameter_message_is_aws_shaped() -> None:
    good = boto_signed()
    auth = header(good, "authorization")
    without = auth.rsplit(", Signature=", 1)[0]
    with pytest.raises(IncompleteSignatureException) as caught:
        sigv4.verify(set_auth_params(good, without), lookup, signed_at(good))
    assert caught.value.message == f"Authorization header requires 'Signature' parameter. Authorization={without}"
    with pytest.raises(IncompleteSignatureException) as caught:
        sigv4.verify(set_auth_params(good, auth.replace("Credential=", "Cred=")), lookup, signed_at(good))
    assert caught.value.message.startswith("Authorization header requires 'Credential' parameter. Authorization=")
    assert "Signature=<redacted>" in caught.value.message


def test_signature_mismatch_uses_default_message() -> None:
    good = boto_signed()
    with pytest.raises(InvalidSignatureException) as caught:
        sigv4.verify(good, lookup_other, signed_at(good))
    assert caught.value.message == InvalidSignatureException.default_message


def signed_at_date(amz_date: str) -> sigv4.SignedRequest:
    request = sigv4.SignedRequest("POST", "/", "", [("Host", HOST), ("X-Amz-Date", amz_date)], BODY)
    return our_signed(request, ["host", "x-amz-date"])


def test_expired_message_matches_aws() -> None:
    request = signed_at_date("20130524T000000Z")
    with pytest.raises(InvalidSignatureException) as caught:
        sigv4.verify(request, lookup, sigv4.parse_amz_date("20130524T003000Z"))
    assert caught.value.message == (
        "Signature expired: 20130524T000000Z is now earlier than 20130524T001500Z (20130524T003000Z - 15 min.)"
    )


def test_not_yet_current_message_matches_aws() -> None:
    request = signed_at_date("20130524T003100Z")
    with pytest.raises(InvalidSignatureException) as caught:
        sigv4.verify(request, lookup, sigv4.parse_amz_date("20130524T000100Z"))
    assert caught.value.message == (
        "Signature not yet current: 20130524T003100Z is still later than 20130524T001600Z (20130524T000100Z + 15 min.)"
    )


def test_scope_messages_match_aws() -> None:
    good = boto_signed(service="dynamodb")
    with pytest.raises(InvalidSignatureException, match=r"^Credential should be scoped to correct service: 'kms'\.$"):
        sigv4.verify(good, lookup, signed_at(good))
    dated = our_signed(boto_signed(), ["content-type", "host", "x-amz-date", "x-amz-target"], scope_date="20000101")
    amz_date = header(dated, "x-amz-date")
    with pytest.raises(InvalidSignatureException) as caught:
        sigv4.verify(dated, lookup, signed_at(dated))
    assert caught.value.message == (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
        f"'20000101' != '{amz_date[:8]}', from '{amz_date}'."
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20150830T123600Z", 1440938160.0),
        ("19700101T000000Z", 0.0),
        ("20240229T235959Z", 1709251199.0),
    ],
)
def test_parse_amz_date(value: str, expected: float) -> None:
    assert sigv4.parse_amz_date(value) == expected


@pytest.mark.parametrize("value", ["20230229T000000Z", "20150830t123600z", "+0150830T123600Z", "20150830T123600Z "])
def test_parse_amz_date_rejects(value: str) -> None:
    with pytest.raises(IncompleteSignatureException, match="ISO-8601 'basic format'"):
        sigv4.parse_amz_date(value)


def test_signing_key_is_cached() -> None:
    sigv4.signing_key.cache_clear()
    first = sigv4.signing_key(SECRET, "20150830", "us-east-1", "kms")
    assert sigv4.signing_key(SECRET, "20150830", "us-east-1", "kms") is first
    assert sigv4.signing_key.cache_info().hits == 1


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "/"),
        ("", "/"),
        ("//", "/"),
        ("/a/./b/../c/", "/a/c/"),
        ("/a/b/..", "/a"),
        ("/../..", "/"),
        ("/a%20b", "/a%2520b"),
        ("/a b~c", "/a%20b~c"),
    ],
)
def test_canonical_uri(path: str, expected: str) -> None:
    assert sigv4.canonical_uri(path) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ""),
        ("b=2&a=1", "a=1&b=2"),
        ("a=2&a=1", "a=1&a=2"),
        ("a", "a="),
        ("a=1&&b", "a=1&b="),
        ("x=a%20b&y=a+b", "x=a%20b&y=a%2Bb"),
        ("k=%7e%2f", "k=~%2F"),
    ],
)
def test_canonical_query_string(query: str, expected: str) -> None:
    assert sigv4.canonical_query_string(query) == expected


def test_non_ascii_header_value_as_http_client_sends_it() -> None:
    """http.client sends str header values as latin-1 while botocore hashes them as UTF-8; latin-1 decoding matches."""
    request = boto_signed(extra={"X-Amz-Meta-Note": "café"})
    wire = [(n, v.encode("latin-1").decode("latin-1")) for n, v in request.headers]
    sigv4.verify(replace(request, headers=wire), lookup, signed_at(request))
