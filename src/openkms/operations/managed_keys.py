"""AWS-managed keys: the keys behind ``alias/aws/<service>``, created on first use, as AWS does.

AWS (developer guide, "AWS managed keys"): a service creates its AWS managed key the first time it needs one
in an account and Region; the key has KeyManager ``AWS``, a policy the customer cannot change (its principals
are everyone in the account, through the service only), rotates every year, and cannot be disabled, rotated
on demand, scheduled for deletion, tagged or redescribed. Customers see it in ListKeys and ListAliases.

Here, a request that names ``alias/aws/<service>`` (a name from :data:`SERVICES`) in DescribeKey or a
cryptographic operation that produces a ciphertext creates the key and its alias if the alias does not exist
yet: those operations declare the parameters that may name one (``managed_key_parameters`` in
openkms/opfacts.py), and the operation registry runs :func:`ensure_named` on them before the handler, which
then finds the key as it finds any other.

The creation is not the caller's change: it is recorded as a service event (CloudTrail ``AwsServiceEvent``
``CreateKey``) in its own write transaction, outside the call's audit scope, so the call keeps its single
record (success or failure as the call ends) and its own at-most-one write transaction.

Difference from AWS, on purpose: openkms has no integrated services, so the policy's ``kms:ViaService``
condition is left out (it would make the key unusable); any principal of the account may use the key directly.
"""

from __future__ import annotations

import contextvars
import json
import threading
import weakref
from collections.abc import Iterable

from openkms import ids
from openkms.context import RequestContext, ServiceAction, note_service_action, service_actions
from openkms.crypto.rand import random_bytes
from openkms.operations import keyspecs, keystates
from openkms.operations.keys import SECONDS_PER_DAY, new_key_material
from openkms.operations.services import Services
from openkms.storage.ports import DuplicateError, Storage, Transaction
from openkms.storage.records import AliasRecord, KeyRecord, KeyVersionRecord

AWS = "AWS"
PREFIX = "alias/aws/"
ROTATION_PERIOD_DAYS = 365  # AWS managed keys rotate every year (since May 2022); not configurable

# The alias suffixes AWS services use for their AWS managed keys, plus ours.
SERVICES: dict[str, str] = {
    "acm": "ACM",
    "backup": "Backup",
    "cloudtrail": "CloudTrail",
    "codecommit": "CodeCommit",
    "dynamodb": "DynamoDB",
    "ebs": "EBS",
    "ecr": "ECR",
    "efs": "EFS",
    "elasticfilesystem": "EFS",
    "es": "Elasticsearch",
    "fsx": "FSx",
    "glue": "Glue",
    "kinesis": "Kinesis",
    "kinesisvideo": "Kinesis Video",
    "lambda": "Lambda",
    "logs": "CloudWatch Logs",
    "rds": "RDS",
    "redshift": "Redshift",
    "s3": "S3",
    "secretsmanager": "Secrets Manager",
    "sns": "SNS",
    "sqs": "SQS",
    "ssm": "SSM",
    "xray": "X-Ray",
    "openkms": "openkms",
}


def service_of(alias_name: str) -> str | None:
    """The service an ``alias/aws/<service>`` name belongs to, or None if it is not one we manage."""
    if not alias_name.startswith(PREFIX):
        return None
    service = alias_name[len(PREFIX) :]
    return service if service in SERVICES else None


def description(service: str) -> str:
    """AWS's wording for an AWS managed key's description."""
    return f"Default key that protects my {SERVICES[service]} resources when no other key is defined"


def managed_key_policy(account_id: str, region: str, service: str) -> str:
    """AWS's managed-key policy shape, without ``kms:ViaService`` (openkms has no integrated services)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": f"auto-{service}-1",
            "Statement": [
                {
                    "Sid": f"Allow access through {SERVICES[service]} for all principals in the account that are "
                    f"authorized to use {SERVICES[service]}",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": [
                        "kms:Encrypt",
                        "kms:Decrypt",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:DescribeKey",
                    ],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"kms:CallerAccount": account_id}},
                },
                {
                    "Sid": "Allow direct access to key metadata to the account",
                    "Effect": "Allow",
                    "Principal": {"AWS": ids.root_arn(account_id)},
                    "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
                    "Resource": "*",
                },
            ],
        },
        indent=2,
    )


def ensure_aws_managed_key(
    svc: Services, tx: Transaction, account_id: str, region: str, alias_name: str, now: float
) -> KeyRecord:
    """The key ``alias_name`` (``alias/aws/<service>``) names, created with its alias inside the write
    transaction ``tx`` if the alias does not exist yet. A concurrent creator's insert makes ``insert_alias``
    raise DuplicateError; the caller then re-reads (:func:`ensure_named`)."""
    service = service_of(alias_name)
    if service is None:
        raise ValueError(f"{alias_name} is not an AWS managed key alias")
    alias = tx.get_alias(account_id, region, alias_name)
    if alias is not None:
        existing = tx.get_key(alias.target_key_id)
        if existing is not None:
            return existing
    key_id = ids.new_key_id()
    version_id = random_bytes(16).hex()
    key = KeyRecord(
        key_id=key_id,
        account_id=account_id,
        region=region,
        arn=ids.key_arn(region, account_id, key_id),
        description=description(service),
        key_usage=keyspecs.ENCRYPT_DECRYPT,
        key_spec=keyspecs.SYMMETRIC_DEFAULT,
        origin="AWS_KMS",
        key_manager=AWS,
        key_state=keystates.ENABLED,
        creation_date=now,
        multi_region=False,
        policy=managed_key_policy(account_id, region, service),
        current_version_id=version_id,
        rotation_enabled=True,
        rotation_period_days=ROTATION_PERIOD_DAYS,
        next_rotation_date=now + ROTATION_PERIOD_DAYS * SECONDS_PER_DAY,
    )
    wrapped = svc.materials.wrap_new(key, version_id, new_key_material(key.key_spec))
    tx.insert_key(key)
    tx.insert_version(KeyVersionRecord(key_id, version_id, now, wrapped))
    tx.insert_alias(AliasRecord(account_id, region, alias_name, key_id, now, now))
    note_service_action(
        ServiceAction("CreateKey", key.arn, key.key_spec, now, {"aliasName": alias_name, "keyManager": AWS})
    )
    return key


# AWS managed aliases known to exist, per storage. Such an alias is never deleted or retargeted, nor its key
# (DeleteAlias, UpdateAlias and ScheduleKeyDeletion refuse them), so later calls naming it need no read.
_EXISTING: weakref.WeakKeyDictionary[Storage, set[tuple[str, str, str]]] = weakref.WeakKeyDictionary()
_EXISTING_LOCK = threading.Lock()


def ensure_named(svc: Services, ctx: RequestContext, key_refs: Iterable[str | None]) -> None:
    """Create the AWS managed keys that ``key_refs`` (the declared parameters of the call, None if absent) name
    in the caller's account and region and that do not exist yet. Any other reference costs no storage access;
    a managed key's costs one read transaction the first time this process sees it."""
    for key_ref in key_refs:
        alias_name = _managed_alias(ctx, key_ref)
        if alias_name is None:
            continue
        named = (ctx.principal.account_id, ctx.region, alias_name)
        existing = _EXISTING.get(svc.storage)
        if existing is not None and named in existing:
            continue
        with svc.storage.read() as tx:
            exists = tx.get_alias(*named) is not None
        if not exists:
            # As the service, not as the caller: in a fresh context, so the write transaction carries a service
            # event instead of the call's audit record (audit/scope.py).
            contextvars.Context().run(_create, svc, *named, ctx.now)
        with _EXISTING_LOCK:
            _EXISTING.setdefault(svc.storage, set()).add(named)


def _managed_alias(ctx: RequestContext, key_ref: str | None) -> str | None:
    """The ``alias/aws/<service>`` name ``key_ref`` gives in the caller's own account and region, if it is one."""
    if not key_ref or "alias/aws/" not in key_ref:
        return None
    ref = ids.parse_key_reference(key_ref)
    if ref is None or not ref.is_alias or ref.alias_name is None:
        return None
    if (ref.region is not None and ref.region != ctx.region) or (
        ref.account is not None and ref.account != ctx.principal.account_id
    ):
        return None
    return ref.alias_name if service_of(ref.alias_name) is not None else None


def _create(svc: Services, account_id: str, region: str, alias_name: str, now: float) -> None:
    try:
        with service_actions(), svc.storage.transaction() as tx:
            ensure_aws_managed_key(svc, tx, account_id, region, alias_name, now)
    except DuplicateError:
        pass  # another request created it first; the handler reads that one
