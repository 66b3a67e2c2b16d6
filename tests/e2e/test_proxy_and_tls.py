"""Who the caller is and whether TLS carried the call, as a policy condition, an audit record and the console's
cookie see it: forwarded headers count only from proxies the operator trusts (none by default, not even
loopback), and ``--tls-cert``/``--tls-key`` serve HTTPS directly."""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import json
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e import rawhttp
from tests.e2e.server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, ServerProcess, free_port

pytestmark = pytest.mark.e2e

FORWARDED = {"X-Forwarded-For": "203.0.113.99", "X-Forwarded-Proto": "https"}


def _list_keys_forwarded(server: ServerProcess) -> int:
    headers = rawhttp.sign(server.port, b"{}", "TrentService.ListKeys")
    return rawhttp.post(server.port, [*headers, *FORWARDED.items()], b"{}").status


def _serve(tmp_path: Path, *args: str) -> ServerProcess:
    return ServerProcess(tmp_path, f"sqlite:///{tmp_path / 'openkms.db'}", free_port(), list(args), workers=1)


def _newest_source_ip(server: ServerProcess) -> str:
    result = server.openkms("audit", "query", "--operation", "ListKeys", "--limit", "1", "--json")
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)[0]["sourceIPAddress"])


def _console_cookie(conn: http.client.HTTPConnection, headers: dict[str, str]) -> str:
    try:
        conn.request("GET", "/console/sign-in", headers=headers)
        response = conn.getresponse()
        response.read()
        return next(v for k, v in response.getheaders() if k.lower() == "set-cookie")
    finally:
        conn.close()


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[ServerProcess]:
    server = _serve(tmp_path).start()
    yield server
    server.stop()


def test_forwarded_headers_from_an_untrusted_peer_change_nothing(plain: ServerProcess) -> None:
    assert _list_keys_forwarded(plain) == 200
    assert _newest_source_ip(plain) == "127.0.0.1"
    cookie = _console_cookie(http.client.HTTPConnection("127.0.0.1", plain.port, timeout=10), FORWARDED)
    assert "Secure" not in cookie


def test_a_trusted_proxy_names_the_client_and_the_scheme(tmp_path: Path) -> None:
    server = _serve(tmp_path, "--trusted-proxies", "127.0.0.1/32").start()
    try:
        assert _list_keys_forwarded(server) == 200
        assert _newest_source_ip(server) == "203.0.113.99"
        cookie = _console_cookie(http.client.HTTPConnection("127.0.0.1", server.port, timeout=10), FORWARDED)
        assert cookie.endswith("; Secure")
    finally:
        server.stop()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class TLSServer(ServerProcess):
    """The same server over HTTPS, trusting only its own self-signed certificate."""

    ca: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def wait_healthy(self, timeout: float, expect_status: int = 200) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log()
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=2, context=self.context())
            try:
                conn.request("GET", "/healthz")
                if conn.getresponse().status == expect_status:
                    return
            except OSError:
                time.sleep(0.1)
            finally:
                conn.close()
        raise RuntimeError(f"no HTTPS answer in {timeout}s:\n{self.log()}")


def test_tls_serves_the_api_and_a_secure_console_cookie(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    args = ["--tls-cert", str(cert), "--tls-key", str(key)]
    server = TLSServer(tmp_path, f"sqlite:///{tmp_path / 'openkms.db'}", free_port(), args, workers=1, ca=cert)
    server.start()
    try:
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=10, context=server.context())
        assert _console_cookie(conn, {}).endswith("; Secure")
        kms = boto3.client(
            "kms", endpoint_url=server.endpoint, region_name=REGION, verify=str(cert),
            aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
        )  # fmt: skip
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"over tls")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"over tls"
    finally:
        server.stop()
