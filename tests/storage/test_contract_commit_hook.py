"""The commit hook on both engines: given when the storage is opened (the server's audit records join their
state change this way), or lent for a block with ``committing_with`` (``openkms iam``'s record of one change).

The hook runs inside the write transaction just before COMMIT (what it writes commits with the change, and an
exception rolls both back); what it returns runs after the commit. Read transactions never run it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from openkms.storage.ports import CommitHook, Storage, Transaction
from tests.storage.support import ACCOUNT, LATEST, OTHER_ACCOUNT, Opener

pytestmark = pytest.mark.usefixtures("storage")  # migrates the database before the hooked storage opens it


class Recorder:
    """A hook that writes a row of its own (OTHER_ACCOUNT) and notes what another connection saw meanwhile."""

    def __init__(self, observer: Storage) -> None:
        self.observer = observer
        self.calls: list[str] = []

    def _visible(self, account_id: str) -> bool:
        with self.observer.read() as tx:
            return tx.account_exists(account_id)

    def __call__(self, tx: Transaction) -> Callable[[], None]:
        self.calls.append(f"before: change visible elsewhere={self._visible(ACCOUNT)}")
        tx.insert_account(OTHER_ACCOUNT, 2.0)

        def after() -> None:
            self.calls.append(f"after: change visible elsewhere={self._visible(ACCOUNT)}")

        return after


def _open(engine: Opener, hook: CommitHook | None) -> Storage:
    opened = engine(before_commit=hook)
    assert opened.schema_version() == LATEST
    return opened


def test_the_hook_given_at_opening_runs_before_each_commit_and_its_answer_after(engine: Opener) -> None:
    observer = engine()
    recorder = Recorder(observer)
    hooked = _open(engine, recorder)
    assert hooked.before_commit is recorder
    with hooked.read() as tx:
        assert not tx.account_exists(ACCOUNT)
    assert recorder.calls == []  # a read never runs it
    with hooked.transaction() as tx:
        tx.insert_account(ACCOUNT, 1.0)
    assert recorder.calls == ["before: change visible elsewhere=False", "after: change visible elsewhere=True"]
    with observer.read() as tx:
        assert tx.list_accounts() == sorted([ACCOUNT, OTHER_ACCOUNT])  # the hook's write committed with the change


def test_a_hook_that_raises_rolls_the_change_back(engine: Opener) -> None:
    def refuse(tx: Transaction) -> None:
        tx.insert_account(OTHER_ACCOUNT, 2.0)
        raise RuntimeError("the record could not be written")

    hooked = _open(engine, refuse)
    with pytest.raises(RuntimeError, match="could not be written"), hooked.transaction() as tx:
        tx.insert_account(ACCOUNT, 1.0)
    with engine().read() as tx:
        assert tx.list_accounts() == []
    with hooked.read() as tx:  # the thread's connection is usable again
        assert not tx.account_exists(ACCOUNT)


def test_committing_with_lends_a_hook_for_the_block_only(engine: Opener) -> None:
    observer = engine()
    recorder = Recorder(observer)
    plain = _open(engine, None)
    assert plain.before_commit is None
    with plain.committing_with(recorder):
        assert plain.before_commit is recorder
        with plain.transaction() as tx:
            tx.insert_account(ACCOUNT, 1.0)
    assert plain.before_commit is None
    with plain.transaction() as tx:  # after the block: no hook
        tx.insert_account("777788889999", 3.0)
    assert recorder.calls == ["before: change visible elsewhere=False", "after: change visible elsewhere=True"]
    with observer.read() as tx:
        assert tx.list_accounts() == sorted([ACCOUNT, OTHER_ACCOUNT, "777788889999"])


def test_committing_with_never_displaces_a_hook_in_force(engine: Opener) -> None:
    def hook(tx: Transaction) -> None:
        return None

    hooked = _open(engine, hook)
    with pytest.raises(RuntimeError, match="already runs a commit hook"), hooked.committing_with(hook):
        pass
    assert hooked.before_commit is hook  # the refusal left the opened hook in place
    plain = _open(engine, None)
    with plain.committing_with(hook):
        with pytest.raises(RuntimeError, match="already runs a commit hook"), plain.committing_with(hook):
            pass
        assert plain.before_commit is hook
    assert plain.before_commit is None
