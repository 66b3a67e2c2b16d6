"""GetKeyLastUsage against a trail whose older records were pruned (retention), in process.

``TrackingStartDate`` is the later of the key's creation and the start of the records the trail still holds:
once the records before a time are gone, an empty ``KeyLastUsage`` means "not used since then", which is what
AWS's description of the field promises (API reference, GetKeyLastUsage).
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

from tests.inprocess import InProcessKMS


def test_tracking_starts_at_the_oldest_record_still_held(tmp_path: Path) -> None:
    kms = InProcessKMS(tmp_path)
    try:
        status, created = kms.call("CreateKey", {})
        assert status == 200
        key_id = created["KeyMetadata"]["KeyId"]
        assert kms.call("Encrypt", {"KeyId": key_id, "Plaintext": base64.b64encode(b"p").decode()})[0] == 200
        before = kms.call("GetKeyLastUsage", {"KeyId": key_id})[1]
        assert before["KeyLastUsage"]["Operation"] == "Encrypt"
        assert before["TrackingStartDate"] == before["KeyCreationDate"]
        time.sleep(0.01)
        assert kms.call("DescribeKey", {"KeyId": key_id})[0] == 200
        with kms.storage.read() as tx:
            [described_row] = [r for r in tx.audit_range(0, 100) if r.event_name == "DescribeKey"]
        with kms.storage.transaction() as tx:
            tx.prune_audit(described_row.seq - 1)  # the CreateKey, Encrypt and GetKeyLastUsage records go
        after = kms.call("GetKeyLastUsage", {"KeyId": key_id})[1]
        assert after["KeyLastUsage"] == {}  # the use is no longer in the trail
        assert after["KeyCreationDate"] == before["KeyCreationDate"]
        assert after["TrackingStartDate"] == described_row.event_time > after["KeyCreationDate"]
    finally:
        kms.close()
