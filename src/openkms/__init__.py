"""openkms: a self-hosted, AWS-KMS-compatible key management service."""

__version__ = "0.1.0"
