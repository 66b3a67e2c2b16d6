"""Micro-benchmark: what authorisation costs an Encrypt (issue 4), in process, through the whole request path.

Three cases, interleaved round by round so that machine drift hits them alike, each a pre-signed Encrypt of
32 bytes replayed through ``KMSApplication.serve_kms`` on one event loop (SigV4, JSON, validation, storage, crypto):

- ``default``: a key with AWS's default key policy; the caller holds ``AdministratorAccess``;
- ``complex``: a key whose policy has 10 statements with conditions (encryption context, tags, source IP,
  principal tags, dates, ``ForAnyValue``), the caller allowed by one of them;
- ``no-authz``: the default key with authorisation switched off in this process (``authorize_key`` and
  ``authorize_account`` replaced by no-ops): the baseline that shows what authorisation costs at all.

Target (issue 4): the complex policy costs at most 15 % of the Encrypt rate (``complex / default >= 0.85``).
The share of authorisation in a default Encrypt (``1 - default / no-authz``) is reported too. Exit 1 if missed.

    .venv/bin/python benchmarks/bench_authz.py [--rounds 7] [--number 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from openkms import identity
from openkms.audit import scope as audit_scope
from openkms.audit.writer import MemoryWriter
from openkms.clock import SystemClock
from openkms.crypto.rand import random_bytes
from openkms.operations import authorization
from openkms.seal.keyring import Keyring
from openkms.server.app import HTTPRequest, HTTPResponse, KMSApplication
from openkms.settings import Settings
from openkms.storage.sqlite import SQLiteStorage
from openkms.wiring import build_app, build_services

ACCOUNT = "111122223333"
REGION = "us-east-1"
HOST = f"kms.{REGION}.amazonaws.com"
TARGET_RATIO = 0.85


def complex_policy() -> str:
    """Ten statements with conditions, of the kinds real key policies carry; the last one lets the caller in."""
    root = f"arn:aws:iam::{ACCOUNT}:root"
    user = f"arn:aws:iam::{ACCOUNT}:user/bench"
    statements: list[dict[str, Any]] = [
        {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "DenyOtherTenants", "Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"StringNotEquals": {"kms:EncryptionContext:tenant": ["t1", "t2", "t3"]}}},
        {"Sid": "Ops", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/ops"},
         "Action": ["kms:Describe*", "kms:List*", "kms:Get*"], "Resource": "*"},
        {"Sid": "Network", "Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
         "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "127.0.0.0/8", "192.168.0.0/16"]},
                       "Bool": {"aws:ViaAWSService": "false"}}},
        {"Sid": "Grants", "Effect": "Allow", "Principal": {"AWS": user}, "Action": "kms:CreateGrant", "Resource": "*",
         "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}},
        {"Sid": "Env", "Effect": "Allow", "Principal": {"AWS": user}, "Action": "kms:GenerateDataKey*",
         "Resource": "*", "Condition": {"StringEquals": {"aws:ResourceTag/env": "${aws:PrincipalTag/env}"}}},
        {"Sid": "Window", "Effect": "Deny", "Principal": "*", "Action": "kms:ScheduleKeyDeletion", "Resource": "*",
         "Condition": {"NumericLessThan": {"kms:ScheduleKeyDeletionPendingWindowInDays": "30"}}},
        {"Sid": "Expiry", "Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
         "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2099-01-01T00:00:00Z"}}},
        {"Sid": "Keys", "Effect": "Allow", "Principal": {"AWS": user}, "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["tenant", "record"]}}},
        {"Sid": "Use", "Effect": "Allow", "Principal": {"AWS": user}, "Action": ["kms:Encrypt", "kms:ReEncrypt*"],
         "Resource": "*", "Condition": {"StringEquals": {"kms:EncryptionContext:tenant": "t1"},
                                        "StringLike": {"aws:userid": "AIDA*"}}},
    ]  # fmt: skip
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


class Harness:
    """One app over a temporary SQLite file, a user ``bench`` and three pre-signed requests."""

    def __init__(self, directory: Path) -> None:
        storage = SQLiteStorage(directory / "openkms.db", before_commit=audit_scope.before_commit)
        storage.migrate()
        keyring = Keyring()
        keyring.unseal(random_bytes(32))
        clock = SystemClock()
        identity.ensure_account(storage, ACCOUNT, clock)
        identity.create_user(storage, ACCOUNT, "bench", clock)
        identity.ensure_administrator_policy(storage, ACCOUNT, "bench")
        created = identity.create_access_key(storage, keyring.root_key(), ACCOUNT, "bench", clock)
        self.credentials = Credentials(created.access_key_id, created.secret_access_key)
        settings = Settings(data_dir=directory, database_url=f"sqlite:///{directory / 'openkms.db'}")
        # Records go to memory: the audit trail's cost is bench_audit.py's subject, not this one's.
        self.app: KMSApplication = build_app(build_services(settings, storage, keyring), audit=MemoryWriter())
        self.storage = storage
        self.loop = asyncio.new_event_loop()
        default_key = self._call("CreateKey", {})["KeyMetadata"]["KeyId"]
        complex_key = self._call("CreateKey", {"Policy": complex_policy()})["KeyMetadata"]["KeyId"]
        self.complex_key = complex_key
        self.requests = {
            "default": self._signed("Encrypt", self._encrypt(default_key)),
            "complex": self._signed("Encrypt", self._encrypt(complex_key)),
        }
        for name, request in self.requests.items():
            response = self.serve(request)
            assert response.status == 200, (name, response.body)

    def serve(self, request: HTTPRequest) -> HTTPResponse:
        return self.loop.run_until_complete(self.app.serve_kms(request))

    def distinct_requests(self, count: int) -> list[HTTPRequest]:
        params = self._encrypt(self.complex_key)
        return [
            self._signed("Encrypt", {**params, "EncryptionContext": {"tenant": "t1", "record": str(n)}})
            for n in range(count)
        ]

    @staticmethod
    def _encrypt(key_id: str) -> dict[str, Any]:
        plaintext = base64.b64encode(b"x" * 32).decode()
        return {"KeyId": key_id, "Plaintext": plaintext, "EncryptionContext": {"tenant": "t1", "record": "42"}}

    def _signed(self, operation: str, params: dict[str, Any]) -> HTTPRequest:
        body = json.dumps(params).encode()
        headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"TrentService.{operation}"}
        aws = AWSRequest(method="POST", url=f"https://{HOST}/", data=body, headers=headers)
        SigV4Auth(self.credentials, "kms", REGION).add_auth(aws)
        pairs = [(k.lower(), v) for k, v in aws.headers.items()] + [("host", HOST)]
        return HTTPRequest("POST", "/", "", pairs, body, "127.0.0.1")

    def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        response = self.serve(self._signed(operation, params))
        assert response.status == 200, response.body
        result: dict[str, Any] = json.loads(response.body)
        return result


@contextmanager
def authorization_off() -> Iterator[None]:
    saved = authorization.authorize_key, authorization.authorize_account
    authorization.authorize_key = lambda *args, **kwargs: None
    authorization.authorize_account = lambda *args, **kwargs: None
    try:
        yield
    finally:
        authorization.authorize_key, authorization.authorize_account = saved


def per_call(run: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        run()
    return (time.perf_counter() - start) / number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=2000, help="calls per case per round")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        harness = Harness(Path(tmp))
        serve, requests = harness.serve, harness.requests
        # Every call of this case has an encryption context of its own (across all rounds), so no decision is
        # ever reused: the cost of evaluating the ten statements each time.
        distinct = iter(harness.distinct_requests(args.rounds * args.number))
        times: dict[str, list[float]] = {"default": [], "complex": [], "complex-distinct": [], "no-authz": []}
        for round_no in range(args.rounds):
            order = ["default", "complex", "complex-distinct", "no-authz"]
            order = order[round_no % 4 :] + order[: round_no % 4]  # rotate, so no case always runs first
            for case in order:
                if case == "no-authz":
                    with authorization_off():
                        times[case].append(per_call(lambda: serve(requests["default"]), args.number))
                elif case == "complex-distinct":
                    times[case].append(per_call(lambda: serve(next(distinct)), args.number))
                else:
                    times[case].append(per_call(functools.partial(serve, requests[case]), args.number))
        harness.loop.close()
        harness.storage.close()
    medians = {case: statistics.median(values) for case, values in times.items()}
    print(f"Encrypt 32 B in process, {args.rounds} interleaved rounds x {args.number} calls, median per call:")
    for case, value in medians.items():
        print(f"  {case:9s} {value * 1e6:8.1f} us   {1 / value:8.0f} req/s")
    ratios = [n / c for n, c in zip(times["default"], times["complex"], strict=True)]
    ratio = statistics.median(ratios)  # rate(complex) / rate(default), per round
    share = 1 - statistics.median(n / d for n, d in zip(times["no-authz"], times["default"], strict=True))
    verdict = "met" if ratio >= TARGET_RATIO else "NOT MET"
    print(f"complex / default rate: {ratio:.3f} (target >= {TARGET_RATIO}: {verdict})")
    cold = statistics.median(n / c for n, c in zip(times["default"], times["complex-distinct"], strict=True))
    print(f"complex with a new encryption context on every call / default rate: {cold:.3f} (no decision reused)")
    print(f"authorisation share of a default Encrypt: {share:.1%}")
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
