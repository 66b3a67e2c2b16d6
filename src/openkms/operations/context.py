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
