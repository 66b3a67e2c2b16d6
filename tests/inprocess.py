"""An openkms app in this process: real SQLite storage, real SigV4 (signed by botocore), no HTTP socket.

For tests that need thousands of requests through the whole request path quickly; end-to-end tests with
a real server process live in ``tests/e2e``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from openkms import identity, ids
from openkms.audit import scope as audit_scope
from openkms.clock import Clock, SystemClock
from openkms.context import Principal, RequestContext
from openkms.crypto.rand import random_bytes
from openkms.errors import KMSError
from openkms.operations.registry import handler_for
from openkms.seal import keyfile
from openkms.seal.keyring import Keyring
from openkms.seal.root_key import initialize_with_keyfile
from openkms.server.app import HTTPRequest, KMSApplication
from openkms.server.operation_runner import Caller, Outcome
from openkms.settings import Settings
from openkms.storage.ports import Storage
from openkms.storage.sqlite import SQLiteStorage
from openkms.wiring import build_app, build_services
from tests.loop_thread import LoopThread

T = TypeVar("T")

ACCOUNT_ID = "111122223333"
REGION = "us-east-1"


class _SigV4At(SigV4Auth):  # type: ignore[misc]  # botocore is untyped
    """botocore's SigV4 signer at a chosen time instead of the wall clock, so that requests stay within the
    server's allowed skew when a test moves the injected clock (the steps of ``SigV4Auth.add_auth``)."""

    def __init__(self, credentials: Credentials, service: str, region: str, when: float) -> None:
        super().__init__(credentials, service, region)
        self._when = when

    def add_auth(self, request: AWSRequest) -> None:
        request.context["timestamp"] = datetime.fromtimestamp(self._when, UTC).strftime(SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        string_to_sign = self.string_to_sign(request, self.canonical_request(request))
        self._inject_signature_to_request(request, self.signature(string_to_sign, request))


class InProcessKMS:
    """``clock`` defaults to the system clock; a test may pass a FrozenClock and move it (requests are signed at
    the clock's time). ``storage`` defaults to SQLite in ``data_dir``; it is migrated here and closed by close().
    ``keyfile_seal``: initialise the data directory as ``serve --dev`` does (key file), so CLI commands that need
    the root key (``--sign-now``, ``iam create-access-key``) can open it; otherwise the root key exists only in
    this process."""

    def __init__(
        self, data_dir: Path, clock: Clock | None = None, storage: Storage | None = None, *, keyfile_seal: bool = False
    ) -> None:
        self.storage = (
            storage
            if storage is not None
            else SQLiteStorage(data_dir / "openkms.db", before_commit=audit_scope.before_commit)
        )
        self.storage.migrate()
        keyring = Keyring()
        clock = clock or SystemClock()
        self.clock = clock
        if keyfile_seal:
            keyring.unseal(initialize_with_keyfile(self.storage, data_dir / keyfile.KEYFILE_NAME, clock))
        else:
            keyring.unseal(random_bytes(32))
        settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'openkms.db'}")
        identity.ensure_account(self.storage, ACCOUNT_ID, clock)
        identity.create_user(self.storage, ACCOUNT_ID, "admin", clock)
        identity.ensure_administrator_policy(self.storage, ACCOUNT_ID, "admin")
        creds = identity.create_access_key(self.storage, keyring.root_key(), ACCOUNT_ID, "admin", clock)
        self.credentials = Credentials(creds.access_key_id, creds.secret_access_key)
        self.services = build_services(settings, self.storage, keyring, clock)
        # The production path: the operation runner, and the node's audit hub run in this process.
        self.app: KMSApplication = build_app(self.services)
        self._loop = LoopThread()

    def call(
        self,
        operation: str,
        params: dict[str, Any],
        region: str = REGION,
        credentials: Credentials | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Sign like boto3 (as the administrator unless ``credentials`` are given) and run the request path;
        returns (status, decoded JSON body)."""
        body = json.dumps(params).encode()
        request = AWSRequest(
            method="POST",
            url=f"https://kms.{region}.amazonaws.com/",
            data=body,
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": f"TrentService.{operation}",
            },
        )
        _SigV4At(credentials or self.credentials, "kms", region, self.clock.now()).add_auth(request)
        headers = [(k.lower(), v) for k, v in request.headers.items()]
        headers.append(("host", f"kms.{region}.amazonaws.com"))
        response = self.run(self.app.serve_kms(HTTPRequest("POST", "/", "", headers, body, "127.0.0.1")))
        return response.status, json.loads(response.body) if response.body else {}

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on this harness's event loop (as a worker runs requests on its own); any thread may."""
        return self._loop.run(work)

    def invoke(
        self, principal: Principal, operation: str, params: dict[str, Any], via: Caller
    ) -> Outcome[dict[str, Any]]:
        """Run ``operation`` as an already authenticated ``principal``, as the console does."""
        return self.run(self.app.runner.run_as(principal, operation, params, via))

    def record_of(self, request_id: str) -> dict[str, Any]:
        """The trail's record of ``request_id`` (exactly one)."""
        with self.storage.read() as tx:
            rows = tx.audit_by_request(request_id)
        assert len(rows) == 1, rows
        found: dict[str, Any] = json.loads(rows[0].event)
        return found

    def context(self, operation: str, params: dict[str, Any]) -> RequestContext:
        """What the request path hands an operation handler for the admin user: to call handlers directly."""
        principal = Principal(ACCOUNT_ID, ids.user_arn(ACCOUNT_ID, "admin"), "admin", self.credentials.access_key)
        now = self.services.clock.now()
        return RequestContext("in-process", operation, principal, REGION, "127.0.0.1", "tests", now, params)

    def handler_call(self, operation: str, params: dict[str, Any]) -> Callable[[], None]:
        """A callable running ``operation``'s handler on ``params`` directly (no HTTP, SigV4 or JSON), an AWS
        error swallowed: what the in-process timing tests measure."""
        handler = handler_for(operation)
        assert handler is not None
        svc, ctx = self.services, self.context(operation, params)

        def call() -> None:
            try:
                handler(svc, ctx, params)
            except KMSError:
                pass

        return call

    def close(self) -> None:
        self._loop.close()
        self.app.close()
        self.storage.close()
