"""CreateAlias, UpdateAlias, DeleteAlias, ListAliases: friendly names per account and region."""

from __future__ import annotations

from dataclasses import replace

from openkms import ids
from openkms.context import RequestContext
from openkms.errors import (
    AlreadyExistsException,
    InvalidAliasNameException,
    LimitExceededException,
    NotFoundException,
    ValidationException,
)
from openkms.operations import authorization, keyrefs, keystates, paging
from openkms.operations.registry import Params, Result, operation
from openkms.operations.services import Services
from openkms.storage.ports import DuplicateError, Transaction
from openkms.storage.records import AliasRecord, KeyRecord

RESERVED_PREFIX = "alias/aws/"
MAX_ALIASES_PER_KEY = 50


def _checked_name(name: str) -> str:
    if not name.startswith("alias/"):
        # ValidationException on the wire, as AWS sends it (recorded responses, issue 18 item 9), although the API
        # reference lists InvalidAliasNameException.
        raise ValidationException(
            'Alias must start with the prefix "alias/". Please see '
            "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"
        )
    if name.startswith(RESERVED_PREFIX):
        raise InvalidAliasNameException('Alias must not begin with "alias/aws/", which is reserved.')
    if not ids.is_valid_alias_name(name):
        raise InvalidAliasNameException(
            "Alias name can contain only alphanumeric characters, forward slashes (/), underscores (_), and dashes (-)."
        )
    return name


def _target(tx: Transaction, ctx: RequestContext, key_ref: str) -> KeyRecord:
    key = keyrefs.resolve_key(tx, ctx, key_ref, allow_alias=False)
    if key.account_id != ctx.principal.account_id:  # an alias and its key live in one account
        raise NotFoundException(f"Key '{key.arn}' does not exist")
    keyrefs.require_customer_managed(key, ctx)
    keystates.require_not_pending_deletion(key)
    return key


def _authorize_alias(tx: Transaction, ctx: RequestContext, name: str) -> None:
    """Alias operations need permission on the alias itself too, which only identity policies grant (AWS)."""
    authorization.authorize_account(tx, ctx, _alias_arn(ctx, name))


def _existing_alias(tx: Transaction, ctx: RequestContext, name: str) -> AliasRecord:
    """The caller's alias ``name``, authorised for a change (through identity policies, AWS), or NotFound."""
    _authorize_alias(tx, ctx, name)
    alias = tx.get_alias(ctx.principal.account_id, ctx.region, name)
    if alias is None:
        raise NotFoundException(f"Alias {_alias_arn(ctx, name)} is not found.")
    return alias


def _authorize_current_key(tx: Transaction, ctx: RequestContext, alias: AliasRecord) -> KeyRecord | None:
    """The key ``alias`` points to now, which the caller must also be allowed to use to move the alias off it."""
    key = tx.get_key(alias.target_key_id)
    if key is not None:
        authorization.authorize_key(tx, ctx, key)
        keyrefs.require_customer_managed(key, ctx)
    return key


def _alias_arn(ctx: RequestContext, name: str) -> str:
    return ids.alias_arn(ctx.region, ctx.principal.account_id, name)


@operation("CreateAlias")
def create_alias(svc: Services, ctx: RequestContext, params: Params) -> Result:
    name = _checked_name(params["AliasName"])
    with svc.storage.transaction() as tx:
        _authorize_alias(tx, ctx, name)
        key = _target(tx, ctx, params["TargetKeyId"])
        if len(tx.list_aliases(ctx.principal.account_id, ctx.region, key.key_id, None, MAX_ALIASES_PER_KEY)) >= (
            MAX_ALIASES_PER_KEY
        ):
            raise LimitExceededException(f"A KMS key can have at most {MAX_ALIASES_PER_KEY} aliases.")
        record = AliasRecord(ctx.principal.account_id, ctx.region, name, key.key_id, ctx.now, ctx.now)
        try:
            tx.insert_alias(record)
        except DuplicateError:
            raise AlreadyExistsException(f"An alias with the name {_alias_arn(ctx, name)} already exists") from None
    return {}


@operation("UpdateAlias")
def update_alias(svc: Services, ctx: RequestContext, params: Params) -> Result:
    name = params["AliasName"]
    with svc.storage.transaction() as tx:
        alias = _existing_alias(tx, ctx, name)
        new_key = _target(tx, ctx, params["TargetKeyId"])
        old_key = _authorize_current_key(tx, ctx, alias)
        if old_key is not None and (old_key.key_spec, old_key.key_usage) != (new_key.key_spec, new_key.key_usage):
            raise ValidationException(
                "The new target key must have the same key spec and key usage as the current target key."
            )
        tx.update_alias(replace(alias, target_key_id=new_key.key_id, last_updated_date=ctx.now))
    return {}


@operation("DeleteAlias")
def delete_alias(svc: Services, ctx: RequestContext, params: Params) -> Result:
    name = params["AliasName"]
    with svc.storage.transaction() as tx:
        _authorize_current_key(tx, ctx, _existing_alias(tx, ctx, name))
        tx.delete_alias(ctx.principal.account_id, ctx.region, name)
    return {}


@operation("ListAliases")
def list_aliases(svc: Services, ctx: RequestContext, params: Params) -> Result:
    # AWS: Limit is 1-100 and defaults to 50 for ListAliases.
    limit = min(int(params.get("Limit", 50)), 100)
    after = paging.decode_marker("aliases", params.get("Marker"))
    with svc.storage.read() as tx:
        authorization.authorize_account(tx, ctx)  # ListAliases is granted by identity policies only (AWS)
        key_id = None
        if params.get("KeyId") is not None:
            key_id = keyrefs.named_key_id(tx, ctx, params["KeyId"], allow_alias=False)
        found = tx.list_aliases(ctx.principal.account_id, ctx.region, key_id, after, limit + 1)
    page, page_fields = paging.page_result(found, limit, "aliases", lambda a: a.alias_name)
    entries = [
        {
            "AliasName": a.alias_name,
            "AliasArn": _alias_arn(ctx, a.alias_name),
            "TargetKeyId": a.target_key_id,
            "CreationDate": a.creation_date,
            "LastUpdatedDate": a.last_updated_date,
        }
        for a in page
    ]
    return {"Aliases": entries, **page_fields}
