"""The storage port over SQL, written once for both engines.

- ``engine.py``: :class:`SQLStorage` (per-thread connections, transactions, the commit hook, schema);
- ``core.py``: the :class:`Dialect` (what differs between engines, as data), the cursor and a transaction's
  plumbing;
- one module per aggregate of the port, each with its statements and the methods that run them: ``keys.py``,
  ``identities.py``, ``grants.py``, ``lifecycle.py``, ``sessions.py``, ``seal.py`` and ``audit.py``;
- ``transaction.py``: :class:`SQLTransaction`, their composition.

Every statement is written with ``?`` placeholders and rendered once per dialect when the storage opens, so the
two engines cannot drift apart.
"""

from openkms.storage.ports import CommitHook
from openkms.storage.sql.core import Cursor, Dialect
from openkms.storage.sql.engine import SQLStorage, ThreadState
from openkms.storage.sql.transaction import Queries, SQLTransaction

__all__ = ["CommitHook", "Cursor", "Dialect", "Queries", "SQLStorage", "SQLTransaction", "ThreadState"]
