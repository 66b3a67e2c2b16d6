"""The ports an operation works with, bundled so handlers have one uniform signature."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from openkms.clock import Clock
from openkms.operations.materials import MaterialCache
from openkms.seal.keyring import Keyring
from openkms.settings import Settings
from openkms.storage.ports import Storage


@dataclass(frozen=True, slots=True)
class Services:
    storage: Storage
    keyring: Keyring
    clock: Clock
    settings: Settings
    materials: MaterialCache
    # Counts the trail's records not yet counted into per-key daily usage (audit/usage.py ``roll_up``), for
    # GetCostAndUsage; passed in by the composition root so that operations never import the audit layer.
    roll_up_usage: Callable[[Storage], int]
