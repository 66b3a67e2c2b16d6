"""An openkms app in this process: real SQLite storage, real SigV4 (signed by botocore), no HTTP socket.

For tests that need thousands of requests through the whole request path quickly; end-to-end tests with
a real server process live in ``tests/e2e``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from openkms import identity
from openkms.clock import SystemClock
from openkms.crypto.rand import random_bytes
from openkms.seal import keyfile
from openkms.seal.keyring import Keyring
from openkms.seal.service import initialize_with_keyfile
from openkms.server.app import HttpRequest, KmsApplication
from openkms.settings import Settings
from openkms.storage.sqlite import SQLiteStorage
from openkms.wiring import build_app, build_services

ACCOUNT_ID = "111122223333"
REGION = "us-east-1"


class InProcessKms:
    def __init__(self, data_dir: Path, *, keyfile_seal: bool = False) -> None:
        """``keyfile_seal``: initialise the data directory as ``serve --dev`` does (key file), so CLI commands
        that need the root key (``--seal-now``, ``iam create-access-key``) can open it; otherwise the root key
        exists only in this process."""
        self.storage = SQLiteStorage(data_dir / "openkms.db")
        self.storage.migrate()
        keyring = Keyring()
        clock = SystemClock()
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
        self.app: KmsApplication = build_app(build_services(settings, self.storage, keyring))

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
        SigV4Auth(credentials or self.credentials, "kms", region).add_auth(request)
        headers = [(k.lower(), v) for k, v in request.headers.items()]
        headers.append(("host", f"kms.{region}.amazonaws.com"))
        response = self.app.handle_kms(HttpRequest("POST", "/", "", headers, body, "127.0.0.1"))
        return response.status, json.loads(response.body) if response.body else {}

    def close(self) -> None:
        self.storage.close()
