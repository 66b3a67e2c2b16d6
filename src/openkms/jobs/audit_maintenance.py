"""The audit trail's upkeep as jobs (audit/retention.py): signing digests, counting usage, pruning, anchoring.

``audit-maintenance`` is the trail's, one for the cluster: one node at a time signs the digest that is due,
rolls usage up and prunes, through the job's lease. Every worker looks at it every half
:func:`~openkms.audit.retention.period` and the lease lets it run at most that often cluster-wide, so a pass
starts at most about one period after the last, as the supervisor thread it replaces did on each node.

``audit-anchor`` is each node's: its sinks (``--audit-anchor-dir``, ``--audit-anchor-syslog``) are that node's
own, so every node delivers every digest to them, whichever node signed it, from its first worker, every
period. Its anchor stays open in that worker between runs (it remembers where each sink stands).

The trail is in the database only with the database audit sink; the dev in-memory sink keeps it in each worker,
and neither job has anything to do.
"""

from __future__ import annotations

from pathlib import Path

from openkms.audit import retention
from openkms.audit.anchor import open_sinks
from openkms.jobs.registry import job
from openkms.operations.services import Services
from openkms.settings import Settings

# This worker's anchors, by where they deliver (one in a server; tests may run several configurations).
_anchors: dict[tuple[Path | None, str | None], retention.NodeAnchor] = {}


def _half_period(settings: Settings) -> float:
    return retention.period(settings.audit_digest_interval_seconds) / 2


def _period(settings: Settings) -> float:
    return retention.period(settings.audit_digest_interval_seconds)


@job("audit-maintenance", cadence=_half_period)
def maintain_trail(svc: Services, now: float) -> None:
    settings = svc.settings
    if settings.audit_sink != "database":
        return
    retention.run_once(
        svc.storage,
        svc.keyring.root_key(),
        now,
        settings.audit_digest_interval_seconds,
        settings.audit_retention_days,
    )


@job("audit-anchor", cadence=_period, per_node=True)
def anchor_digests(svc: Services, now: float) -> None:
    settings = svc.settings
    where = (settings.audit_anchor_dir, settings.audit_anchor_syslog)
    if settings.audit_sink != "database" or where == (None, None):
        return
    node = _anchors.get(where)
    if node is None:
        anchor = open_sinks(*where)  # an unusable sink raises: logged, and tried again at the next turn
        if anchor is None:
            return
        node = _anchors[where] = retention.NodeAnchor(anchor)
    node.deliver(svc.storage)
