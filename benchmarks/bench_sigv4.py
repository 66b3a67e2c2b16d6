"""Micro-benchmark: one SigV4 verification, ours versus botocore's signer computing the same signature.

Both sides get the same boto3-shaped Encrypt request (4 KiB plaintext). "ours" is the whole ``verify`` (parse,
checks, canonical request, cached signing key, HMAC, constant-time compare); "botocore" is what a verifier built on
botocore internals would do: rebuild the request and recompute ``SigV4Auth.signature`` at the signed timestamp.
Rounds are interleaved and the median per-call time of each is reported with their ratio. No assertions.

    .venv/bin/python benchmarks/bench_sigv4.py [--rounds 7] [--number 2000]
"""

from __future__ import annotations

import argparse
import base64
import hmac
import json
import os
import statistics
import time
from collections.abc import Callable

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from openkms.auth import sigv4

ACCESS_KEY = "AKIAOPENKMSBENCH0001"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
HOST = "kms.us-east-1.amazonaws.com"


def signed_request() -> sigv4.SignedRequest:
    body = json.dumps({"KeyId": "alias/bench", "Plaintext": base64.b64encode(os.urandom(4096)).decode()}).encode()
    headers = {
        "X-Amz-Target": "TrentService.Encrypt",
        "Content-Type": "application/x-amz-json-1.1",
        "User-Agent": "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux",
    }
    aws = AWSRequest(method="POST", url=f"https://{HOST}/", data=body, headers=headers)
    SigV4Auth(Credentials(ACCESS_KEY, SECRET), "kms", "us-east-1").add_auth(aws)
    wire = [*aws.headers.items(), ("Host", HOST), ("Content-Length", str(len(body)))]
    return sigv4.SignedRequest("POST", "/", "", wire, body)


def header(request: sigv4.SignedRequest, name: str) -> str:
    return next(v for n, v in request.headers if n.lower() == name)


def botocore_verify(request: sigv4.SignedRequest) -> None:
    """Recompute the signature with botocore's signer, as a botocore-based verifier would."""
    signed_names = header(request, "authorization").split("SignedHeaders=")[1].split(",")[0].split(";")
    headers = {n: v for n, v in request.headers if n.lower() in signed_names and n.lower() != "host"}
    aws = AWSRequest(method=request.method, url=f"https://{HOST}{request.path}", data=request.body, headers=headers)
    aws.context["timestamp"] = header(request, "x-amz-date")
    signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET), "kms", "us-east-1")
    expected = signer.signature(signer.string_to_sign(aws, signer.canonical_request(aws)), aws)
    provided = header(request, "authorization").rsplit("Signature=", 1)[1]
    if not hmac.compare_digest(expected, provided):
        raise SystemExit("botocore disagrees with the signature it produced")


def per_call_us(fn: Callable[[], None], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args()

    request = signed_request()
    now = sigv4.parse_amz_date(header(request, "x-amz-date"))

    def ours() -> None:
        sigv4.verify(request, lambda _key: SECRET, now)

    def theirs() -> None:
        botocore_verify(request)

    ours()
    theirs()
    our_times, their_times = [], []
    for _ in range(args.rounds):
        our_times.append(per_call_us(ours, args.number))
        their_times.append(per_call_us(theirs, args.number))
    mine, other = statistics.median(our_times), statistics.median(their_times)
    print(f"body {len(request.body)} B, {args.rounds} interleaved rounds x {args.number} calls, median per call")
    print(f"ours (sigv4.verify):          {mine:8.1f} us/verify")
    print(f"botocore SigV4Auth signature: {other:8.1f} us/verify")
    print(f"ours / botocore:              {mine / other:8.2f}x")


if __name__ == "__main__":
    main()
