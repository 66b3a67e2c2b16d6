"""Checking the trail: the hash chain, the signed digests, and (in the database) the indexed copies.

The verifier walks records in seq order and digests in digest order and names the first thing wrong:

- a record whose text or seq changed (its hash no longer links), one removed (a gap in seq), one inserted
  or reordered (a seq out of order), or an indexed column that disagrees with the event it was copied from;
- a digest whose signature fails (a wrong or replaced key, an edited body), one removed or replaced (the
  digests' own chain breaks), or whose signed head hash does not match the records it covers (the records
  were rewritten with recomputed hashes, or the tail was truncated).

Records after the last digest are protected by the chain only (the report counts them): a digest is signed
every interval, and ``openkms audit verify`` can sign one first (``--sign-now``) when the service key is at
hand. Two more checks cover what the database alone cannot prove:

- **the anchor** (audit/anchor.py): given the digests delivered outside the database, every anchored digest
  must be in the database unchanged, and the records its coverage names must be there. Deleting the newest
  records together with their digests (which the chain and the digests alone cannot show: nothing after
  them points back) is named as truncation; a database rolled back and signed over shows as a digest that
  differs from its anchored copy; an anchor that stopped receiving digests while the database kept signing
  them for more than two intervals is named too.
- **staleness**: each scheduled digest states its interval (``digestIntervalSeconds``). If calls to the
  service (``kms.amazonaws.com`` records) after the newest digest span more than two intervals, the service
  ran that long without a digest: digests were removed, or signing stopped. A server that restarts signs
  within a fraction of an interval, so downtime alone never shows; an idle trail cannot show anything.

The verifier trusts only the public keys it is given; the keys stored beside the trail are used only
when none are pinned (then the check proves integrity against accidents, not against someone who could
also replace the keys).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from openkms.audit import exportfmt
from openkms.audit.anchor import AnchoredFiles
from openkms.audit.chain import GENESIS_HASH, link
from openkms.audit.digests import DEFAULT_INTERVAL_SECONDS, SIGNATURE_ALGORITHM, digest_hash
from openkms.crypto import keypairs, signatures
from openkms.crypto.errors import InvalidSignatureError
from openkms.storage.audit import AuditRow, DigestRow
from openkms.storage.ports import Storage

PAGE = 5000
STALE_INTERVALS = 2  # a newest digest this many intervals behind the calls after it is stale
STALE_GRACE_SECONDS = 5.0  # scheduling slack on top (the maintenance pass runs every quarter interval)
KMS_EVENT_SOURCE = "kms.amazonaws.com"  # records of calls to the server (not of CLI administration)


@dataclass(slots=True)
class Report:
    records: int = 0
    digests: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    unsigned_tail: int = 0  # records after the last digest (chain-checked only)
    newest_digest: DigestRow | None = None  # the newest digest that verified (compare with the syslog anchor)
    anchored_digest_seq: int | None = None  # the newest digest the anchor holds (None: no anchor checked)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "digests": self.digests,
            "firstSeq": self.first_seq,
            "lastSeq": self.last_seq,
            "unsignedTail": self.unsigned_tail,
            "newestDigest": None if self.newest_digest is None else _digest_summary(self.newest_digest),
            "anchoredDigestSeq": self.anchored_digest_seq,
            "problems": self.problems,
        }


def _digest_summary(digest: DigestRow) -> dict[str, Any]:
    """What the syslog anchor's line says about a digest (audit/anchor.py ``summary_line``)."""
    return {
        "digestSeq": digest.digest_seq,
        "toSeq": digest.to_seq,
        "periodEnd": digest.period_end,
        "digestHash": digest_hash(digest),
    }


def _check_digests(digests: list[DigestRow], keys: Mapping[str, bytes], report: Report) -> list[dict[str, Any]]:
    """Signatures and the digests' own chain; returns the parsed bodies of the digests that verified."""
    bodies: list[dict[str, Any]] = []
    previous: DigestRow | None = None
    for position, digest in enumerate(digests, start=1):
        where = f"digest {position}"
        try:
            body = json.loads(digest.body)
        except json.JSONDecodeError:
            report.problems.append(f"{where}: body is not JSON (edited)")
            return bodies
        public = keys.get(str(body.get("signingKeyId")))
        if public is None:
            report.problems.append(f"{where}: signed by unknown key {str(body.get('signingKeyId'))[:40]!r}")
            return bodies
        if body.get("signatureAlgorithm") != SIGNATURE_ALGORITHM or not _signature_ok(public, digest):
            report.problems.append(f"{where}: signature does not verify (edited, replaced or re-signed)")
            return bodies
        if digest.digest_seq != position or body.get("digestSeq") != digest.digest_seq:
            found = body.get("digestSeq")
            report.problems.append(f"{where}: found digest {found} in its place (removed, replaced or reordered)")
            return bodies
        if body.get("previousDigestHash") != digest_hash(previous):
            report.problems.append(f"{where}: does not follow digest {position - 1} (removed or replaced)")
            return bodies
        expected_from = 1 if previous is None else previous.to_seq + 1
        if (body.get("fromSeq"), body.get("toSeq")) != (digest.from_seq, digest.to_seq) or digest.from_seq != (
            expected_from
        ):
            report.problems.append(
                f"{where}: covers records {digest.from_seq}..{digest.to_seq}, expected from {expected_from}"
            )
            return bodies
        bodies.append(body)
        previous = digest
        report.digests += 1
        report.newest_digest = digest
    return bodies


def _signature_ok(public_der: bytes, digest: DigestRow) -> bool:
    try:
        public = keypairs.load_public_key("ECC_NIST_EDWARDS25519", public_der)
        signature = base64.b64decode(digest.signature, validate=True)
        signatures.verify(public, SIGNATURE_ALGORITHM, digest.body.encode(), "RAW", signature)
    except (InvalidSignatureError, ValueError, binascii.Error):
        return False
    return True


def _columns_problem(row: AuditRow) -> str | None:
    """The indexed copies must say what the event says (a query must not be fooled by an edited column)."""
    event = json.loads(row.event)
    resources = [r.get("ARN", "") for r in event.get("resources", [])]
    key_ids = [arn.rsplit("/", 1)[-1] for arn in resources]
    expected = {
        "event_name": event.get("eventName"),
        "request_id": event.get("requestID"),
        "principal_arn": event.get("userIdentity", {}).get("arn", ""),
        "source_ip": event.get("sourceIPAddress"),
        "error_code": event.get("errorCode"),
        "key_id": key_ids[0] if key_ids else None,
        "other_key_id": key_ids[1] if len(key_ids) > 1 else None,
    }
    for column, value in expected.items():
        if getattr(row, column) != value:
            return f"record {row.seq}: column {column} disagrees with the event (edited)"
    return None


def verify_rows(
    rows: Iterable[AuditRow],
    digests: list[DigestRow],
    keys: Mapping[str, bytes],
    *,
    check_columns: bool,
    last_seq_hint: int | None = None,
    anchor: AnchoredFiles | None = None,
) -> Report:
    """Verify records (in stored order) against the digests signed by ``keys`` (key id -> DER public key) and,
    when given, the digests anchored outside the database."""
    report = Report()
    bodies = _check_digests(digests, keys, report)
    by_end = {int(b["toSeq"]): b for b in bodies if int(b["toSeq"]) >= int(b["fromSeq"])}
    signed_to = max((int(b["toSeq"]) for b in bodies), default=0)
    tail = _Tail(report.newest_digest.period_end if report.newest_digest is not None else None)
    previous_hash: str | None = None
    expected_seq: int | None = None
    for row in rows:
        if report.problems:
            break
        if expected_seq is None:
            report.first_seq = row.seq
            if row.seq == 1:
                previous_hash = GENESIS_HASH
            else:  # an older part was pruned: a digest must stand for it
                stand_in = next((b for b in bodies if int(b["toSeq"]) == row.seq - 1), None)
                if stand_in is None:
                    first_missing = 1 + max((int(b["toSeq"]) for b in bodies if int(b["toSeq"]) < row.seq), default=0)
                    report.problems.append(
                        f"record {first_missing}: removed (the trail resumes at {row.seq} and no digest stands for"
                        " what is missing)"
                    )
                    break
                previous_hash = str(stand_in["headHash"])
            expected_seq = row.seq
        if row.seq != expected_seq:
            kind = "removed" if row.seq > expected_seq else "inserted or reordered (seq out of order)"
            report.problems.append(f"record {expected_seq}: {kind}; found seq {row.seq} in its place")
            break
        assert previous_hash is not None
        computed = link(previous_hash, row.seq, row.event)
        if computed != row.hash:
            report.problems.append(f"record {row.seq}: changed (its hash does not link to record {row.seq - 1})")
            break
        if check_columns:
            problem = _json_safe(_columns_problem, row)
            if problem is not None:
                report.problems.append(problem)
                break
        signed = by_end.get(row.seq)
        if signed is not None and signed["headHash"] != computed:
            report.problems.append(
                f"digest {signed['digestSeq']}: records {signed['fromSeq']}..{row.seq} do not match its signed head"
                " hash (rewritten with recomputed hashes)"
            )
            break
        previous_hash = computed
        report.records += 1
        report.last_seq = row.seq
        expected_seq = row.seq + 1
        if row.seq > signed_to:
            tail.add(row)
    if not report.problems:
        _check_coverage(report, bodies, last_seq_hint)
    walked = not report.problems  # every record was read: the anchor's coverage can be checked against them
    if walked:
        _check_stale(report, tail, _interval(bodies))
    if anchor is not None:
        _check_anchor(report, digests, keys, anchor, _interval(bodies), walked)
    return report


class _Tail:
    """The calls to the service recorded after the newest digest: when the first and the last were made."""

    def __init__(self, digest_end: float | None) -> None:
        self.digest_end = digest_end
        self.first: tuple[int, float] | None = None
        self.last: tuple[int, float] | None = None

    def add(self, row: AuditRow) -> None:
        try:
            source = json.loads(row.event).get("eventSource")
        except (json.JSONDecodeError, AttributeError):
            return
        if source != KMS_EVENT_SOURCE:
            return
        if self.first is None:
            self.first = (row.seq, row.event_time)
        self.last = (row.seq, row.event_time)


def _interval(bodies: list[dict[str, Any]]) -> float:
    """The digest interval the newest scheduled digest states; for a trail signed before digests stated it,
    the widest gap between digests (never below the default), so such a trail is judged leniently."""
    for body in reversed(bodies):
        stated = body.get("digestIntervalSeconds")
        if isinstance(stated, int | float) and stated > 0:
            return float(stated)
    ends = [float(b["periodEnd"]) for b in bodies]
    gaps = [later - earlier for earlier, later in itertools.pairwise(ends)]
    return max([DEFAULT_INTERVAL_SECONDS, *gaps])


def _check_stale(report: Report, tail: _Tail, interval: float) -> None:
    if tail.first is None or tail.last is None:
        return
    since = tail.first[1] if tail.digest_end is None else max(tail.first[1], tail.digest_end)
    span = tail.last[1] - since
    if span > STALE_INTERVALS * interval + STALE_GRACE_SECONDS:
        newest = report.newest_digest
        after = "the first of them" if newest is None else f"digest {newest.digest_seq}"
        report.problems.append(
            f"records {tail.first[0]}..{tail.last[0]}: calls went on for {span:.0f} s after {after} and no digest "
            f"covers them (more than {STALE_INTERVALS} intervals of {interval:g} s): digests were removed, or "
            "signing stopped while the server ran (stale)"
        )


def _check_anchor(
    report: Report,
    digests: list[DigestRow],
    keys: Mapping[str, bytes],
    anchor: AnchoredFiles,
    interval: float,
    walked: bool,
) -> None:
    """The database against the digests anchored outside it (audit/anchor.py)."""
    report.problems.extend(anchor.problems)
    anchored: list[DigestRow] = []
    for digest in anchor.digests:
        try:
            body = json.loads(digest.body)
            public = keys.get(str(body.get("signingKeyId")))
        except (json.JSONDecodeError, AttributeError):
            public = None
        if public is None or not _signature_ok(public, digest):
            report.problems.append(
                f"anchor file for digest {digest.digest_seq}: signature does not verify with the trusted keys "
                "(the anchor was edited)"
            )
            continue
        anchored.append(digest)
    if not anchored:
        if digests:
            report.problems.append(
                f"the anchor {anchor.path} holds no digest, the database holds {len(digests)}: nothing outside "
                "the database vouches for the trail's end (a wrong --anchor-dir, or delivery never happened)"
            )
        return
    newest = anchored[-1]
    report.anchored_digest_seq = newest.digest_seq
    stored = {d.digest_seq: d for d in digests}
    missing = [d.digest_seq for d in anchored if d.digest_seq not in stored]
    if missing:
        report.problems.append(
            f"{_span('digest', missing)}: missing from the database; the anchor holds "
            f"{'it' if len(missing) == 1 else 'them'} (truncated)"
        )
    for digest in anchored:
        row = stored.get(digest.digest_seq)
        if row is not None and (row.body, row.signature) != (digest.body, digest.signature):
            report.problems.append(
                f"digest {digest.digest_seq}: differs from its anchored copy (the database's digests were replaced "
                "or rolled back after it was anchored)"
            )
            break
    held = report.last_seq or 0
    if walked and newest.to_seq > held:
        report.problems.append(
            f"records {held + 1}..{newest.to_seq}: missing; anchored digest {newest.digest_seq} covers them (truncated)"
        )
    later = [d for d in digests if d.digest_seq > newest.digest_seq]
    if later and later[-1].period_end - newest.period_end > STALE_INTERVALS * interval + STALE_GRACE_SECONDS:
        report.problems.append(
            f"digests {later[0].digest_seq}..{later[-1].digest_seq}: signed over "
            f"{later[-1].period_end - newest.period_end:.0f} s after the anchor's newest (digest "
            f"{newest.digest_seq}) but never anchored: delivery to {anchor.path} stopped, or it is not this "
            "trail's anchor (stale anchor)"
        )


def _span(noun: str, seqs: list[int]) -> str:
    return f"{noun} {seqs[0]}" if len(seqs) == 1 else f"{noun}s {seqs[0]}..{seqs[-1]}"


def _json_safe(check: Any, row: AuditRow) -> str | None:
    try:
        result: str | None = check(row)
    except (json.JSONDecodeError, AttributeError, TypeError):
        return f"record {row.seq}: event is not a CloudTrail JSON object (edited)"
    return result


def _check_coverage(report: Report, bodies: list[dict[str, Any]], last_seq_hint: int | None) -> None:
    signed_to = max((int(b["toSeq"]) for b in bodies), default=0)
    last = report.last_seq or 0
    if signed_to > last:
        report.problems.append(f"records {last + 1}..{signed_to}: missing (digests cover them; truncated)")
        return
    if last_seq_hint is not None and last_seq_hint != last:
        report.problems.append(f"records {last + 1}..{last_seq_hint}: missing (the chain head names {last_seq_hint})")
        return
    report.unsigned_tail = last - max(signed_to, (report.first_seq or 1) - 1)


def verify_storage(
    storage: Storage,
    pinned_keys: Mapping[str, bytes] | None = None,
    progress: Callable[[int], None] | None = None,
    anchor: AnchoredFiles | None = None,
) -> Report:
    """Verify the trail in the database, page by page (each page its own read snapshot); ``progress`` is told
    how many records were read so far after each page. ``anchor``: the digests anchored outside the
    database, read before the database (so a digest anchored meanwhile is in the database too)."""
    with storage.read() as tx:
        digests = _all_digests(tx)
        keys = (
            dict(pinned_keys) if pinned_keys is not None else {k.key_id: k.public_key for k in tx.list_signing_keys()}
        )
        head = tx.audit_head()

    def rows() -> Iterable[AuditRow]:  # up to the head read above: later appends are not this check's
        after, read = 0, 0
        while True:
            with storage.read() as tx:
                page = [r for r in tx.audit_range(after, PAGE) if r.seq <= head.seq]
            yield from page
            read += len(page)
            if progress is not None:
                progress(read)
            if len(page) < PAGE:
                return
            after = page[-1].seq

    return verify_rows(rows(), digests, keys, check_columns=True, last_seq_hint=head.seq, anchor=anchor)


def _all_digests(tx: Any) -> list[DigestRow]:
    found: list[DigestRow] = []
    while True:
        page = tx.list_digests(found[-1].digest_seq if found else 0, PAGE)
        found.extend(page)
        if len(page) < PAGE:
            return found


def verify_export(stream: IO[str], pinned_keys: Mapping[str, bytes] | None = None) -> Report:
    """Verify an export (audit/exportfmt.py) offline; raises :class:`exportfmt.ExportError` if it is not one."""
    header, digests, rows = exportfmt.read(stream)
    if pinned_keys is None:
        keys = {str(k["keyId"]): base64.b64decode(k["publicKey"]) for k in header.get("signingKeys", [])}
    else:
        keys = dict(pinned_keys)
    return verify_rows(rows, digests, keys, check_columns=False)
