"""The unseal gate in-process (server/unseal_gate.py): one derivation at a time, backoff after a failure, and a
slot that frees itself when the worker holding it dies."""

from __future__ import annotations

from openkms.server.unseal_gate import MAX_DERIVATION_SECONDS, UnsealGate


def test_one_derivation_at_a_time_then_backoff_after_a_failure() -> None:
    gate = UnsealGate()
    assert gate.try_begin(now=100.0) is None
    busy = gate.try_begin(now=100.5)
    assert busy is not None and busy.status == 429 and "in progress" in busy.message
    gate.finish(succeeded=False, now=101.0)
    waiting = gate.try_begin(now=101.5)
    assert waiting is not None and "failed" in waiting.message and waiting.retry_after == 1
    assert gate.try_begin(now=102.1) is None
    gate.finish(succeeded=True, now=102.2)
    assert gate.try_begin(now=102.3) is None


def test_a_slot_whose_worker_died_frees_itself() -> None:
    """A worker killed mid-derivation never calls finish: the slot must not stay taken for ever."""
    gate = UnsealGate()
    assert gate.try_begin(now=100.0) is None  # and its worker dies here
    assert gate.try_begin(now=100.0 + MAX_DERIVATION_SECONDS - 1) is not None
    assert gate.try_begin(now=100.0 + MAX_DERIVATION_SECONDS + 1) is None


def test_peers_outside_the_networks_are_refused() -> None:
    gate = UnsealGate(("127.0.0.1/32", "::1/128"))
    assert gate.allows_peer("127.0.0.1") and gate.allows_peer("::1")
    assert not gate.allows_peer("10.0.0.1") and not gate.allows_peer("not an address")
