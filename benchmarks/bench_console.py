"""Console pages against the same API calls made with boto3, in the same run (issue 7: "fast").

    .venv/bin/python benchmarks/bench_console.py [--keys 100] [--repeat 15]

Starts ``openkms serve --dev --workers 2`` on SQLite (run.py's ``start_openkms``), creates ``--keys`` keys (each
tagged, one in ten with an alias) and encrypts with a few, signs in to the console over HTTP, then times each
page ``--repeat`` times (median, after one warm-up) and, as its baseline, the API calls the page makes, made
one after another by a boto3 client (what a script showing the same would do):

    keys    GET /console/keys               ListAliases, ListKeys, DescribeKey and ListResourceTags per key
    detail  GET /console/keys/<id>          DescribeKey, ListAliases, ListResourceTags, GetKeyPolicy,
                                            ListGrants, GetKeyRotationStatus, ListKeyRotations
    audit   GET /console/audit?key=<id>     (LookupEvents has no boto3 twin here: no ratio)
    usage   GET /console/usage              (GetCostAndUsage likewise)

A ratio below 1 means the page costs less than its calls over boto3: the page runs them in the server, and
their audit records share group commits. Every call a page makes is authorised and recorded all the same.
"""

from __future__ import annotations

import argparse
import http.client
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ACCESS_KEY_ID, ACCOUNT_ID, SECRET_ACCESS_KEY, start_openkms


class Session:
    """Just enough of a browser: one cookie jar, the CSRF token of a form."""

    def __init__(self, endpoint: str) -> None:
        parts = urlsplit(endpoint)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        headers = {"Host": f"{self.host}:{self.port}"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = urlencode(form) if form is not None else None
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
        conn.close()
        return response.status, text

    def sign_in(self) -> None:
        _, page = self.request("GET", "/console/sign-in")
        token = re.search(r'name="csrf" value="([^"]*)"', page)
        assert token is not None
        status, _ = self.request(
            "POST",
            "/console/sign-in",
            {"csrf": token.group(1), "access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY},
        )
        assert status == 303, status


def median_ms(action: Callable[[], Any], repeat: int) -> float:
    action()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        server = start_openkms("sqlite", Path(work), 2, None, None)
        try:
            endpoint = server.target.endpoint
            kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1",
                               aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY)  # fmt: skip
            keys = []
            for i in range(args.keys):
                key = kms.create_key(Tags=[{"TagKey": "env", "TagValue": "bench"}])["KeyMetadata"]["KeyId"]
                keys.append(key)
                if i % 10 == 0:
                    kms.create_alias(AliasName=f"alias/bench-{i}", TargetKeyId=key)
                if i < 5:
                    for _ in range(20):
                        kms.encrypt(KeyId=key, Plaintext=b"x")
            detail_key = keys[0]
            browser = Session(endpoint)
            browser.sign_in()

            def page(path: str) -> Callable[[], None]:
                def get() -> None:
                    status, _ = browser.request("GET", path)
                    assert status == 200, (path, status)

                return get

            def boto_keys() -> None:
                kms.list_aliases(Limit=100)
                for listed in kms.list_keys(Limit=100)["Keys"]:
                    kms.describe_key(KeyId=listed["KeyId"])
                    kms.list_resource_tags(KeyId=listed["KeyId"])

            def boto_detail() -> None:
                kms.describe_key(KeyId=detail_key)
                kms.list_aliases(KeyId=detail_key)
                kms.list_resource_tags(KeyId=detail_key)
                kms.get_key_policy(KeyId=detail_key, PolicyName="default")
                kms.list_grants(KeyId=detail_key)
                kms.get_key_rotation_status(KeyId=detail_key)
                kms.list_key_rotations(KeyId=detail_key)

            rows = [
                ("keys", page("/console/keys"), boto_keys),
                ("detail", page(f"/console/keys/{detail_key}"), boto_detail),
                ("audit", page(f"/console/audit?key={detail_key}"), None),
                ("usage", page("/console/usage"), None),
            ]
            print(f"console pages, {args.keys} keys, account {ACCOUNT_ID}, median of {args.repeat} (ms)")
            print(f"{'page':8} {'console':>9} {'boto3':>9} {'ratio':>7}")
            for name, console, baseline in rows:
                page_ms = median_ms(console, args.repeat)
                if baseline is None:
                    print(f"{name:8} {page_ms:9.1f} {'-':>9} {'-':>7}")
                    continue
                base_ms = median_ms(baseline, args.repeat)
                print(f"{name:8} {page_ms:9.1f} {base_ms:9.1f} {page_ms / base_ms:7.2f}")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
