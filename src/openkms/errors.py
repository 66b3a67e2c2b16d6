"""The one error taxonomy of openkms.

Every error a caller can see is a subclass of :class:`KMSError` carrying the AWS error code, the HTTP status
and whether the sender is at fault. ``server/error_map.py`` is the only place that turns them into wire
responses; anything that is not a ``KMSError`` becomes ``KMSInternalException`` with no detail.

Messages must never contain plaintext, ciphertext, key material or secrets.

Hierarchy::

    KMSError
    ├── ClientError (400, sender fault): ValidationException, NotFoundException, ...
    │   └── AuthError: InvalidSignatureException, UnrecognizedClientException, ...
    └── ServerError (5xx): KMSInternalException, KeyUnavailableException, DependencyTimeoutException
"""

from __future__ import annotations

# The longest message an error carries, in its answer and its audit record. Messages that quote input (a policy's
# condition value, a validation echo) are cut here whatever their source; AWS's own messages are far shorter.
MAX_MESSAGE_CHARS = 4096


class KMSError(Exception):
    """Base of every error that has an AWS wire representation."""

    code: str = "KMSInternalException"
    status: int = 500
    sender_fault: bool = False
    default_message: str = ""

    def __init__(self, message: str | None = None, *, empty_message_field: bool = False) -> None:
        """An empty message leaves the ``message`` field out of the answer, as AWS does for some errors; with
        ``empty_message_field`` the answer carries ``"message": ""``, as AWS does for others (issue 18)."""
        text = self.default_message if message is None else message
        if len(text) > MAX_MESSAGE_CHARS:  # a message quoting input must not carry it whole (issue 15 item 16)
            text = f"{text[:MAX_MESSAGE_CHARS]}... ({len(text)} characters)"
        self.message = text
        self.empty_message_field = empty_message_field
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class ClientError(KMSError):
    """The request was wrong; retrying it unchanged will fail again."""

    status = 400
    sender_fault = True


class ServerError(KMSError):
    """The service failed; the caller may retry."""

    status = 500


class ValidationException(ClientError):
    code = "ValidationException"


class SerializationException(ClientError):
    code = "SerializationException"


class UnknownOperationException(ClientError):
    code = "UnknownOperationException"


class NotFoundException(ClientError):
    code = "NotFoundException"


class AlreadyExistsException(ClientError):
    code = "AlreadyExistsException"


class DisabledException(ClientError):
    code = "DisabledException"


class KMSInvalidStateException(ClientError):
    code = "KMSInvalidStateException"


class InvalidCiphertextException(ClientError):
    code = "InvalidCiphertextException"


class IncorrectKeyException(ClientError):
    code = "IncorrectKeyException"
    default_message = "The key ID in the request does not identify a CMK that can perform this operation."


class InvalidKeyUsageException(ClientError):
    code = "InvalidKeyUsageException"


class KMSInvalidSignatureException(ClientError):
    code = "KMSInvalidSignatureException"


class KMSInvalidMacException(ClientError):
    code = "KMSInvalidMacException"


class InvalidGrantTokenException(ClientError):
    code = "InvalidGrantTokenException"


class ExpiredImportTokenException(ClientError):
    code = "ExpiredImportTokenException"
    default_message = (
        "The import token is expired. Use GetParametersForImport to get a new import token and public key."
    )


class InvalidImportTokenException(ClientError):
    code = "InvalidImportTokenException"
    default_message = "The import token is invalid or is associated with a different KMS key."


class IncorrectKeyMaterialException(ClientError):
    code = "IncorrectKeyMaterialException"


class InvalidAliasNameException(ClientError):
    code = "InvalidAliasNameException"


class InvalidArnException(ClientError):
    code = "InvalidArnException"


class InvalidMarkerException(ClientError):
    code = "InvalidMarkerException"


class LimitExceededException(ClientError):
    code = "LimitExceededException"


class TagException(ClientError):
    code = "TagException"


class UnsupportedOperationException(ClientError):
    code = "UnsupportedOperationException"


class MalformedPolicyDocumentException(ClientError):
    code = "MalformedPolicyDocumentException"


class AccessDeniedException(ClientError):
    code = "AccessDeniedException"


class DryRunOperationException(ClientError):
    """HTTP 400 as AWS sends it (recorded responses, issue 18 item 6), although botocore's model says 412."""

    code = "DryRunOperationException"
    default_message = "The request would have succeeded, but the DryRun option is set."


class CustomKeyStoreNotFoundException(ClientError):
    code = "CustomKeyStoreNotFoundException"


class AuthError(ClientError):
    """Authentication failed; the message never says which secret byte was wrong."""


class InvalidSignatureException(AuthError):
    code = "InvalidSignatureException"
    default_message = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )


class IncompleteSignatureException(AuthError):
    code = "IncompleteSignatureException"


class UnrecognizedClientException(AuthError):
    code = "UnrecognizedClientException"
    default_message = "The security token included in the request is invalid."


class MissingAuthenticationTokenException(AuthError):
    """AWS answers an unsigned request with ``MissingAuthenticationToken`` (HTTP 403)."""

    code = "MissingAuthenticationToken"
    status = 403
    default_message = "Request is missing Authentication Token"


class InvalidClientTokenIdException(AuthError):
    code = "InvalidClientTokenId"
    status = 403


class ServiceSealedException(ServerError):
    """The service holds no root key yet; only health and unseal answer."""

    code = "ServiceUnavailableException"
    status = 503
    default_message = "The service is sealed. An operator must unseal it before it can answer KMS requests."


class KMSInternalException(ServerError):
    code = "KMSInternalException"
    default_message = "The request was rejected because an internal exception occurred. The request can be retried."


class KeyUnavailableException(ServerError):
    code = "KeyUnavailableException"


class DependencyTimeoutException(ServerError):
    code = "DependencyTimeoutException"
    status = 503


class RequestEntityTooLargeException(ClientError):
    code = "RequestEntityTooLargeException"
    status = 413


__all__ = [name for name, value in list(globals().items()) if isinstance(value, type) and issubclass(value, KMSError)]
