"""Who is calling, from where, for which request: everything an operation may know of the caller."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Principal:
    account_id: str
    arn: str
    user_name: str
    access_key_id: str
    user_id: str = ""  # AIDA... (the audit record's principalId)


@dataclass(slots=True)
class AuditNote:
    """What only the operation knows and the request's audit record needs (filled in as it runs).

    ``resources`` are the keys the request resolved, in order (ReEncrypt: source, then destination), each as
    (key ARN, key spec); ``key_material_id`` is the backing version used; ``result`` is set by state-changing
    operations whose answer AWS logs, before their transaction ends (the record is written in it).
    """

    resources: list[tuple[str, str]] = field(default_factory=list)
    key_material_id: str | None = None
    result: dict[str, Any] | None = None

    def add_key(self, arn: str, key_spec: str) -> None:
        if all(arn != known for known, _ in self.resources):
            self.resources.append((arn, key_spec))


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str
    operation: str
    principal: Principal
    region: str  # from the SigV4 credential scope
    source_ip: str
    user_agent: str
    now: float  # epoch seconds, from the injected clock, fixed for the whole request
    params: Mapping[str, Any] = field(default_factory=dict)  # the validated request, for condition keys
    secure_transport: bool = False  # TLS between the client and this server (aws:SecureTransport)
    audit: AuditNote = field(default_factory=AuditNote)
