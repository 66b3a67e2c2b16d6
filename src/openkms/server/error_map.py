"""The one place where exceptions become AWS error responses.

Known errors carry their own code and status. Anything else is an internal failure: it is logged (type
and traceback, never request data) and answered as ``KMSInternalException`` with no detail.
"""

from __future__ import annotations

import logging

from openkms.errors import KMSError, KMSInternalException
from openkms.server.jsonio import dumps

log = logging.getLogger("openkms.server")


def as_kms_error(exc: BaseException, operation: str | None) -> KMSError:
    if isinstance(exc, KMSError):
        return exc
    log.error("internal error (%s) in %s", type(exc).__name__, operation or "request", exc_info=exc)
    return KMSInternalException()


def error_body(error: KMSError) -> bytes:
    """``{"__type", "message"}``; without ``message`` when it is empty, unless the error says AWS sends it empty."""
    if error.message or error.empty_message_field:
        return dumps({"__type": error.code, "message": error.message})
    return dumps({"__type": error.code})
