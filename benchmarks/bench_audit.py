"""What the durable audit trail costs: Encrypt with records made durable (group commit, SQLite WAL + FULL)
versus the same server keeping records in memory (``--dev-audit-in-memory``), interleaved in the same rounds.

    .venv/bin/python benchmarks/bench_audit.py [--rounds 3] [--duration 6] [--concurrency 1 32]

Same harness as run.py (wrk replaying pre-signed requests, 2 workers per server, quiet-waiting, noisy-cell
retries). Targets (issue 5): audited/in-memory >= 0.85 at concurrency 32 and >= 0.5 at concurrency 1.
Exit 1 if a target is missed or a cell failed, 2 if wrk is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # the sibling harness, found through the line above
import wrk_script

AUDITED, IN_MEMORY = "audited", "audit-in-memory"
TARGETS = {32: 0.85, 1: 0.5}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--operation", default="Encrypt")
    parser.add_argument("--noise-limit", type=float, default=0.5)
    parser.add_argument("--quiet-wait", type=float, default=60.0)
    parser.add_argument("--cell-retries", type=int, default=2)
    args = parser.parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        print(wrk_script.INSTALL_HINT, file=sys.stderr)
        return 2
    plan = run.Plan(wrk, args.duration, args.warmup, 1)
    ratios: dict[int, list[float]] = {c: [] for c in args.concurrency}
    rates: dict[tuple[str, int], list[float]] = {}
    p99: dict[tuple[str, int], list[float]] = {}
    failed = 0
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="openkms-bench-audit-"))
        stack.callback(shutil.rmtree, workdir, True)
        servers = []
        for engine, extra in ((AUDITED, ()), (IN_MEMORY, ("--dev-audit-in-memory",))):
            servers.append(run.start_openkms(engine, workdir, args.workers, None, None, extra))
            stack.callback(servers[-1].stop)
        scripts = run.Scripts(workdir, args.requests)
        for server in servers:
            scripts.prepare(server)
        for number in range(1, args.rounds + 1):
            print(f"== round {number} ==\n{run.HEADER}", flush=True)
            for concurrency in args.concurrency:
                cells = {}
                for server in servers:
                    cell = run.measure(plan, scripts, servers, server, args.operation, concurrency, number, args)
                    print(run.cell_line(cell), flush=True)
                    failed += cell.failure is not None
                    cells[server.engine] = cell
                    rates.setdefault((server.engine, concurrency), []).append(cell.rps)
                    p99.setdefault((server.engine, concurrency), []).append(cell.p99_ms)
                if cells[IN_MEMORY].rps > 0:
                    ratios[concurrency].append(cells[AUDITED].rps / cells[IN_MEMORY].rps)
    print(f"\n== {args.operation}: audited / in-memory audit (median of {args.rounds} per-round ratios) ==")
    missed = False
    for concurrency, values in ratios.items():
        median = statistics.median(values) if values else 0.0
        target = TARGETS.get(concurrency)
        met = target is None or median >= target
        missed |= not met
        print(
            f"c{concurrency:<3} audited {statistics.median(rates[(AUDITED, concurrency)]):>9,.0f} req/s "
            f"(p99 {statistics.median(p99[(AUDITED, concurrency)]):.2f} ms), in memory "
            f"{statistics.median(rates[(IN_MEMORY, concurrency)]):>9,.0f} req/s "
            f"(p99 {statistics.median(p99[(IN_MEMORY, concurrency)]):.2f} ms): ratio {median:.3f} "
            f"[{' '.join(f'{v:.3f}' for v in values)}]"
            + ("" if target is None else f"  target >= {target}: {'MET' if met else 'NOT MET'}")
        )
    return 1 if missed or failed else 0


if __name__ == "__main__":
    sys.exit(main())
