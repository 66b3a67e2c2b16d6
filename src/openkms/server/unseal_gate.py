"""Who may try a passphrase at ``POST /unseal``, and how often: the passphrase is the root of trust.

``/unseal`` is unauthenticated by nature (the server cannot check a caller before it holds its root key), so
it was a passphrase oracle: any peer could guess as fast as Argon2id ran, and each guess allocated 64 MiB in
the default thread pool. The gate answers before any key derivation runs:

- peers outside ``unseal_networks`` are refused (``--unseal-from 127.0.0.1/32,::1/128``: loopback only);
- a server that is already unsealed verifies nothing (it used to check the guess and say right or wrong);
- after a wrong passphrase, every worker of the node refuses attempts for a doubling delay (1 s, 2 s, 4 s
  ... at most :data:`MAX_BACKOFF_SECONDS`); a right one resets it;
- one key derivation at a time per node: a second attempt while one runs is refused, never queued.

The state is shared by the node's workers through ``multiprocessing`` primitives made by the supervisor,
so a guesser gains nothing by spreading attempts over connections.
"""

from __future__ import annotations

import ipaddress
import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.context import BaseContext

MAX_BACKOFF_SECONDS = 60.0
# How long one derivation may hold the slot; past it (its worker died) the next attempt may run. Argon2id with
# 64 MiB takes well under a second here.
MAX_DERIVATION_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an attempt was refused before the passphrase was looked at."""

    status: int
    code: str
    message: str
    retry_after: int | None = None


class UnsealGate:
    """The slot is a deadline, not a held lock: a worker killed in the middle of a derivation (SIGKILL, OOM)
    would hold a lock for ever, and no unseal could run until the node restarted. The shared lock guards
    only the few instructions that read and write the state, never the derivation."""

    def __init__(self, networks: tuple[str, ...] = (), context: BaseContext | None = None) -> None:
        ctx = context if context is not None else multiprocessing.get_context("spawn")
        self._networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)
        self._lock = ctx.Lock()  # guards the three values below, for microseconds at a time
        self._busy_until = ctx.Value("d", 0.0, lock=False)  # a derivation holds the slot until then
        self._failures = ctx.Value("i", 0, lock=False)
        self._not_before = ctx.Value("d", 0.0, lock=False)

    def allows_peer(self, client_ip: str) -> bool:
        if not self._networks:
            return True
        try:
            address = ipaddress.ip_address(client_ip)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def try_begin(self, now: float | None = None) -> Refusal | None:
        """Take the node's one derivation slot; a :class:`Refusal` if busy or still backing off.

        Never waits for a derivation: a caller that gets None must call :meth:`finish` exactly once.
        """
        at = time.time() if now is None else now
        if not self._lock.acquire(timeout=1.0):
            return Refusal(429, "ThrottlingException", "Another unseal attempt is in progress.", 1)
        try:
            if self._busy_until.value > at:
                return Refusal(429, "ThrottlingException", "Another unseal attempt is in progress.", 1)
            wait = self._not_before.value - at
            if wait > 0:
                return Refusal(
                    429, "ThrottlingException", "Too many failed unseal attempts; retry later.", int(wait) + 1
                )
            self._busy_until.value = at + MAX_DERIVATION_SECONDS
            return None
        finally:
            self._lock.release()

    def finish(self, succeeded: bool, now: float | None = None) -> None:
        """Record the outcome of the attempt begun by :meth:`try_begin` and free the slot."""
        at = time.time() if now is None else now
        with self._lock:
            self._busy_until.value = 0.0
            if succeeded:
                self._failures.value = 0
                self._not_before.value = 0.0
            else:
                self._failures.value += 1
                delay = min(2.0 ** (self._failures.value - 1), MAX_BACKOFF_SECONDS)
                self._not_before.value = at + delay
