"""Console tests reuse the end-to-end servers (one per engine) and their fixtures."""

from tests.e2e.conftest import key_id, kms, server

__all__ = ["key_id", "kms", "server"]
