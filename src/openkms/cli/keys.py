"""``openkms keys list`` and ``openkms keys show``: the operator's view of the keys, read from the database.

Metadata only: what DescribeKey, ListAliases, ListResourceTags, ListGrants, ListKeyRotations, GetKeyPolicy and
GetKeyLastUsage would answer, in their field names, for every account at once. Key material is never read.
Like ``audit`` and ``usage`` this reads the data directory directly (an operator's tool on the server, not an
API client), so it is not itself recorded in the trail; ``--json`` gives AWS's shapes with ISO-8601 dates.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from openkms import apimodel, ids
from openkms.cli.audit import key_filter
from openkms.cli.common import (
    CliNotFoundError,
    CliValidationError,
    add_subcommand,
    emit,
    emit_fields,
    iso,
    open_existing,
    printable,
    resolve_paths,
)
from openkms.operations import keyspecs, metadata
from openkms.operations.grants import grant_entry
from openkms.operations.lastusage import last_usage_entry, tracked_operations
from openkms.operations.rotation import key_material_entries, rotation_status, supports_automatic_rotation
from openkms.settings import DEFAULT_REGION
from openkms.storage.ports import Storage, iterate_all_keys
from openkms.storage.records import AliasRecord, KeyRecord

LIST_COLUMNS = ["KeyId", "Aliases", "State", "Spec", "Usage", "Created", "Description"]
DESCRIPTION_WIDTH = 40
PAGE = 500


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = subparsers.add_parser(
        "keys",
        help="list the keys and show one in full",
        description="List the KMS keys of every account, filtered, and show one key in full (metadata only).",
        epilog=(
            "examples:\n"
            "  openkms keys list --tag env=production --state Enabled\n"
            "  openkms keys show alias/payments --json"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, details: str, *examples: str) -> argparse.ArgumentParser:
        parser = add_subcommand(commands, "keys", name, help_text, details, *examples)
        parser.add_argument("--json", action="store_true", help="machine-readable output (AWS field names)")
        parser.add_argument("--account-id", default=None, help="only this account (default: every account)")
        return parser

    listing = command(
        "list",
        "list keys, filtered",
        "Every filter given must match. Ordered by account, region and key id. With --json: a JSON array with "
        "each key's metadata, aliases and tags.",
        "--tag env=production --state Enabled",
        "--alias payments --spec SYMMETRIC_DEFAULT",
        "--region eu-west-1 --json",
    )
    listing.add_argument(
        "--region", action="append", default=None, help="only this region (repeatable; default: every region)"
    )
    listing.add_argument("--state", help="key state, e.g. Enabled, Disabled, PendingDeletion")
    listing.add_argument("--spec", help="key spec, e.g. SYMMETRIC_DEFAULT, RSA_2048, HMAC_256")
    listing.add_argument("--usage", help="key usage, e.g. ENCRYPT_DECRYPT, SIGN_VERIFY")
    listing.add_argument("--alias", help="keys with an alias whose name contains this text (any case)")
    listing.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY[=VALUE]",
        help="keys with this tag (and value); repeatable, all must match",
    )

    show = command(
        "show",
        "show one key in full",
        "Metadata, aliases, tags, rotation status and history, grants, when it was last used, and its key policy.",
        "alias/payments",
        "1234abcd-12ab-34cd-56ef-1234567890ab --json",
        "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    )
    show.add_argument("key", metavar="KEY", help="key id, key ARN, alias name or alias ARN")
    show.add_argument("--region", default=DEFAULT_REGION, help=f"region of an alias name (default {DEFAULT_REGION})")


def run(args: argparse.Namespace) -> int:
    criteria = _criteria(args) if args.keys_command == "list" else None
    _, url = resolve_paths(args)
    storage = open_existing(url)
    try:
        if criteria is not None:
            return _list(args, storage, criteria)
        return _show(args, storage)
    finally:
        storage.close()


# ---- list ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Criteria:
    state: str | None
    spec: str | None
    usage: str | None
    alias: str | None
    tags: tuple[tuple[str, str | None], ...]

    def matches(self, key: KeyRecord, aliases: Sequence[str]) -> bool:
        if self.state is not None and key.key_state != self.state:
            return False
        if self.spec is not None and key.key_spec != self.spec:
            return False
        if self.usage is not None and key.key_usage != self.usage:
            return False
        return self.alias is None or any(self.alias in name.lower() for name in aliases)

    def matches_tags(self, tags: dict[str, str]) -> bool:
        return all(k in tags and (v is None or tags[k] == v) for k, v in self.tags)


def _enum_value(option: str, value: str | None, shape: str) -> str | None:
    """``value`` spelled as the model's enum spells it (any case given); a value outside it is refused."""
    if value is None:
        return None
    allowed: list[str] = list(apimodel.shape(shape)["enum"])
    for name in allowed:
        if name.lower() == value.lower():
            return name
    raise CliValidationError(f"{option} {value!r} is not one of {', '.join(allowed)}")


def _criteria(args: argparse.Namespace) -> _Criteria:
    tags: list[tuple[str, str | None]] = []
    for text in args.tag:
        name, sep, value = text.partition("=")
        if not name:
            raise CliValidationError(f"--tag {text!r}: give KEY or KEY=VALUE")
        tags.append((name, value if sep else None))
    alias = args.alias.lower().removeprefix("alias/") if args.alias else None
    return _Criteria(
        state=_enum_value("--state", args.state, "KeyState"),
        spec=_enum_value("--spec", args.spec, "KeySpec"),
        usage=_enum_value("--usage", args.usage, "KeyUsageType"),
        alias=alias or None,
        tags=tuple(tags),
    )


def _scopes(storage: Storage, account_id: str | None, regions: Sequence[str] | None) -> list[tuple[str, str]]:
    """The (account, region) pairs that hold keys, as asked."""
    with storage.read() as tx:
        counts = tx.count_keys()
    held = sorted({(c.account_id, c.region) for c in counts})
    return [
        (account, region)
        for account, region in held
        if (account_id is None or account == account_id) and (not regions or region in regions)
    ]


def _aliases_by_key(storage: Storage, account_id: str, region: str) -> dict[str, list[str]]:
    """Every alias of one account and region, by target key: one paged read instead of one per key."""
    found: dict[str, list[str]] = {}
    after: str | None = None
    while True:
        with storage.read() as tx:
            batch: list[AliasRecord] = tx.list_aliases(account_id, region, None, after, PAGE)
        for alias in batch:
            found.setdefault(alias.target_key_id, []).append(alias.alias_name)
        if len(batch) < PAGE:
            return found
        after = batch[-1].alias_name


def _tags(storage: Storage, key_id: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    after: str | None = None
    while True:
        with storage.read() as tx:
            batch = tx.list_tags(key_id, after, PAGE)
        tags.update((t.tag_key, t.tag_value) for t in batch)
        if len(batch) < PAGE:
            return tags
        after = batch[-1].tag_key


@dataclass(frozen=True, slots=True)
class _Listed:
    key: KeyRecord
    aliases: list[str]
    tags: dict[str, str] | None  # read only when a filter or --json needs them


def _matching(storage: Storage, args: argparse.Namespace, criteria: _Criteria) -> Iterator[_Listed]:
    for account, region in _scopes(storage, args.account_id, args.region):
        aliases = _aliases_by_key(storage, account, region)
        for key in iterate_all_keys(storage, account, region, PAGE):
            names = aliases.get(key.key_id, [])
            if not criteria.matches(key, names):
                continue
            tags = _tags(storage, key.key_id) if criteria.tags or args.json else None
            if tags is not None and not criteria.matches_tags(tags):
                continue
            yield _Listed(key, names, tags)


def _list(args: argparse.Namespace, storage: Storage, criteria: _Criteria) -> int:
    listed = list(_matching(storage, args, criteria))
    if args.json:
        print(json.dumps([_listed_json(item) for item in listed], indent=2, ensure_ascii=False))
        return 0
    several_scopes = len({(i.key.account_id, i.key.region) for i in listed}) > 1
    columns = (["Account", "Region"] if several_scopes else []) + LIST_COLUMNS
    emit([_listed_row(item) for item in listed], columns, False)
    if not listed:
        print("no keys match" if criteria != _Criteria(None, None, None, None, ()) else "no keys yet")
    return 0


def _listed_row(item: _Listed) -> dict[str, Any]:
    key = item.key
    description = key.description
    if len(description) > DESCRIPTION_WIDTH:
        description = description[: DESCRIPTION_WIDTH - 3] + "..."
    return {
        "Account": key.account_id,
        "Region": key.region,
        "KeyId": key.key_id,
        "Aliases": ", ".join(item.aliases) or "-",
        "State": key.key_state,
        "Spec": key.key_spec,
        "Usage": key.key_usage,
        "Created": iso(key.creation_date),
        "Description": description or "-",
    }


def _listed_json(item: _Listed) -> dict[str, Any]:
    listed: dict[str, Any] = _iso_dates(
        {
            **metadata.key_metadata(item.key),
            "Region": item.key.region,
            "Aliases": item.aliases,
            "Tags": [{"TagKey": k, "TagValue": v} for k, v in (item.tags or {}).items()],
        }
    )
    return listed


_DATE_FIELDS = frozenset(
    {"CreationDate", "DeletionDate", "ValidTo", "NextRotationDate", "RotationDate", "Timestamp",
     "TrackingStartDate", "KeyCreationDate", "LastUpdatedDate"}
)  # fmt: skip


def _iso_dates(value: Any) -> Any:
    """AWS's epoch-second date fields as ISO-8601 UTC strings, as the AWS CLI prints them, at any depth."""
    if isinstance(value, dict):
        return {
            k: iso(v) if k in _DATE_FIELDS and isinstance(v, int | float) else _iso_dates(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_iso_dates(v) for v in value]
    return value


# ---- show ----------------------------------------------------------------------------------------------------


def _find_key(storage: Storage, args: argparse.Namespace) -> KeyRecord:
    key_id = key_filter(storage, args.key, args.account_id, args.region)
    with storage.read() as tx:
        key = tx.get_key(key_id)
    named_arn = args.key if args.key.startswith("arn:") and ":key/" in args.key else None
    if (
        key is None
        or (args.account_id is not None and key.account_id != args.account_id)
        or (named_arn is not None and key.arn != named_arn)  # the key id of an ARN of another region or account
    ):
        raise CliNotFoundError(f"Key '{args.key}' does not exist")
    return key


def _details(storage: Storage, key: KeyRecord) -> dict[str, Any]:
    """Everything ``keys show`` prints, in AWS's shapes, read in one snapshot."""
    with storage.read() as tx:
        imported = tx.get_imported_material(key.key_id)
        aliases = tx.list_aliases(key.account_id, key.region, key.key_id, None, 10_000)
        materials = [entry for _, entry in key_material_entries(tx, key, time.time())]
        grants = tx.list_grants(key.key_id, None, 10_000)
        last = tx.last_key_use(key.key_id, tracked_operations())
    rotation: dict[str, Any] = {"AutomaticRotationSupported": supports_automatic_rotation(key)}
    if key.key_spec == keyspecs.SYMMETRIC_DEFAULT:
        rotation.update(rotation_status(key))
        rotation["Rotations"] = materials
    details: dict[str, Any] = _iso_dates(
        {
            "KeyMetadata": metadata.key_metadata(key, imported),
            "Region": key.region,
            "Aliases": [
                {"AliasName": a.alias_name, "AliasArn": ids.alias_arn(key.region, key.account_id, a.alias_name)}
                for a in aliases
            ],
            "Tags": [{"TagKey": k, "TagValue": v} for k, v in _tags(storage, key.key_id).items()],
            "Rotation": rotation,
            "Grants": [grant_entry(g, key.arn) for g in grants],
            "KeyLastUsage": last_usage_entry(last),
            "Policy": json.loads(key.policy),
        }
    )
    return details


def _show(args: argparse.Namespace, storage: Storage) -> int:
    details = _details(storage, _find_key(storage, args))
    if args.json:
        print(json.dumps(details, indent=2, ensure_ascii=False))
        return 0
    _print_details(details)
    return 0


def _print_details(d: dict[str, Any]) -> None:
    meta = d["KeyMetadata"]
    fields: list[tuple[str, Any]] = [
        ("KeyId", meta["KeyId"]),
        ("Arn", meta["Arn"]),
        ("Aliases", ", ".join(a["AliasName"] for a in d["Aliases"]) or "-"),
        ("State", meta["KeyState"]),
        ("Description", meta["Description"] or "-"),
        ("Spec", meta["KeySpec"]),
        ("Usage", meta["KeyUsage"]),
        ("Origin", meta["Origin"]),
        ("Created", meta["CreationDate"]),
    ]
    if "DeletionDate" in meta:
        note = "(material destroyed then; cancel-key-deletion stops it)"
        fields.append(("DeletionDate", f"{meta['DeletionDate']} {note}"))
    if "ValidTo" in meta:
        fields.append(("MaterialValidTo", meta["ValidTo"]))
    fields += [("Tags", ", ".join(f"{t['TagKey']}={t['TagValue']}" for t in d["Tags"]) or "-")]
    fields.append(("Rotation", _rotation_summary(d["Rotation"], meta["KeySpec"])))
    last = d["KeyLastUsage"]
    fields.append(("LastUsed", f"{last['Operation']} at {last['Timestamp']} (request {last['KmsRequestId']})"
                   if last else "not used since tracking began"))  # fmt: skip
    emit_fields(fields)
    rotations = [r for r in d["Rotation"].get("Rotations", []) if "RotationDate" in r]
    if rotations:
        print("\nRotations:")
        emit(
            [
                {
                    "Date": r["RotationDate"],
                    "Type": r["RotationType"],
                    "State": r["KeyMaterialState"],
                    "KeyMaterialId": r["KeyMaterialId"],
                }
                for r in rotations
            ],
            ["Date", "Type", "State", "KeyMaterialId"],
            False,
        )
    print(f"\nGrants: {len(d['Grants']) or 'none'}")
    if d["Grants"]:
        emit(
            [
                {
                    "GrantId": g["GrantId"][:12] + "...",
                    "Name": g.get("Name", ""),
                    "Grantee": g["GranteePrincipal"],
                    "Operations": ",".join(g["Operations"]),
                }
                for g in d["Grants"]
            ],
            ["GrantId", "Name", "Grantee", "Operations"],
            False,
        )
    print("\nPolicy:")
    for line in json.dumps(d["Policy"], indent=2, ensure_ascii=False).splitlines():
        print(printable(line))


def _rotation_summary(rotation: dict[str, Any], spec: str) -> str:
    if not rotation["AutomaticRotationSupported"] and spec != keyspecs.SYMMETRIC_DEFAULT:
        return f"not supported for {spec}"
    if rotation.get("KeyRotationEnabled"):
        summary = f"automatic every {rotation['RotationPeriodInDays']} days"
        if "NextRotationDate" in rotation:
            summary += f", next {rotation['NextRotationDate']}"
    else:
        imported = "on demand only (imported material)"
        summary = "automatic rotation off" if rotation["AutomaticRotationSupported"] else imported
    count = sum(1 for r in rotation.get("Rotations", []) if "RotationDate" in r)
    return summary + f"; {count} rotation(s) so far"
