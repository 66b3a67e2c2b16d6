"""Where a key-type request's CPU goes inside the server: the primitive measured where it runs (issue 3).

    .venv/bin/python benchmarks/attribute_crypto.py [--rounds 2] [--duration 8] [--concurrency 1 32]

keytypes.py charges each case its primitive's cost from a timeit loop in a quiet subprocess. Inside a worker the
same call costs more: between two requests the interpreter, uvloop and SQLite evict its code and tables, and
for RSA-2048 that difference is as large as what is being measured. This script measures the primitive inside
the workers instead. It runs the same server and pre-signed requests as keytypes.py (``--audit-poll-us 0``, 2
workers, SQLite), and py-spy samples both workers during each run. Then, per case:

    primitive in the worker (ms/req) = worker CPU ms/req x (main-thread samples inside the case's crypto call /
                                       all main-thread samples)
    overhead (ms/req)                = server CPU ms/req - primitive in the worker

The issue's target is overhead / overhead(Encrypt-32B) <= 1.0. The script prints it beside keytypes.py's
subtraction of the timeit cost, measured in the same round. It needs py-spy (``pip install py-spy``) and the
right to trace the server's processes (root, or ``kernel.yama.ptrace_scope`` 0). Exit 2 if either is
missing, or if wrk is.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import keytypes  # the sibling modules are found through the line above
import run
import wrk_script

# The frame of each case's crypto call, as py-spy names it: "function (file:line)".
CRYPTO_FRAMES = {
    "Encrypt-32B": "encrypt (openkms/crypto/symmetric.py:",
    "Sign-P256": "sign (openkms/crypto/signatures.py:",
    "Sign-RSA2048": "sign (openkms/crypto/signatures.py:",
    "Verify-P256": "verify (openkms/crypto/signatures.py:",
    "GenMac-HMAC256": "hmac_generate (openkms/crypto/hmac.py:",
}
SAMPLE_RATE = 250


@dataclass(frozen=True, slots=True)
class Attribution:
    label: str
    concurrency: int
    rps: float
    server_cpu_ms: float  # per request, every process of the server
    worker_cpu_ms: float  # per request, the workers only
    share: float  # of the workers' main-thread samples, inside the crypto call
    samples: int

    @property
    def primitive_ms(self) -> float:
        return self.worker_cpu_ms * self.share

    @property
    def overhead_ms(self) -> float:
        return self.server_cpu_ms - self.primitive_ms


def _py_spy() -> str | None:
    """py-spy from PATH, else beside this interpreter (the project's .venv)."""
    return shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))


def _main_thread_shares(files: Sequence[Path], frame: str) -> tuple[float, int]:
    """(share of main-thread samples inside ``frame``, main-thread samples) from py-spy's raw output."""
    inside = total = 0
    for path in files:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or "(threading.py:" in stack.split(";", 1)[0]:
                continue  # another thread of the worker (job scheduler, thread pool)
            total += int(count)
            if frame in stack:
                inside += int(count)
    return (inside / total if total else 0.0), total


def attribute(
    server: run.Server, scripts: keytypes.KeyTypeScripts, label: str, concurrency: int, seconds: int, work: Path
) -> Attribution:
    _, script = scripts.get(server, label, time.time() + seconds + 60)
    url = server.target.endpoint
    base = ["wrk", "-t1", f"-c{concurrency}", "-s", str(script), url]
    subprocess.run([*base[:3], "-d1s", *base[3:]], capture_output=True, check=False)  # warm-up
    workers = run.worker_pids(server.pgid)
    everyone = run.group_pids(server.pgid)
    load = subprocess.Popen([*base[:3], f"-d{seconds + 2}s", *base[3:]], stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    outputs = [work / f"{label}-{concurrency}-{pid}.txt" for pid in workers]
    before_all, before_workers, started = run.cpu_ticks(everyone), run.cpu_ticks(workers), time.monotonic()
    spy = _py_spy() or "py-spy"
    spies = [
        subprocess.Popen(
            [spy, "record", "-p", str(pid), "-d", str(seconds), "-r", str(SAMPLE_RATE), "-f", "raw", "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid, out in zip(workers, outputs, strict=True)
    ]
    for process in spies:
        process.wait()
    elapsed = time.monotonic() - started
    after_all, after_workers = run.cpu_ticks(everyone), run.cpu_ticks(workers)
    text = load.communicate()[0]
    rps = wrk_script.parse(text).rps
    requests = rps * elapsed
    tick_ms = 1000.0 / os.sysconf("SC_CLK_TCK")
    share, samples = _main_thread_shares([p for p in outputs if p.exists()], CRYPTO_FRAMES[label])
    return Attribution(
        label,
        concurrency,
        rps,
        (after_all - before_all) * tick_ms / requests,
        (after_workers - before_workers) * tick_ms / requests,
        share,
        samples,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=8, help="seconds sampled per case and concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None or _py_spy() is None:
        print("wrk and py-spy are required (apt-get install wrk; pip install -e '.[bench]')", file=sys.stderr)
        return 2
    ratios: dict[tuple[str, int], list[float]] = {}
    timeit_ratios: dict[tuple[str, int], list[float]] = {}
    with contextlib.ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="openkms-attribute-"))
        stack.callback(shutil.rmtree, work, True)
        server = run.start_openkms(run.SQLITE, work, args.workers, None, None, ("--audit-poll-us", "0"))
        stack.callback(server.stop)
        scripts = keytypes.KeyTypeScripts(work, 2000)
        scripts.prepare(server)
        for number in range(1, args.rounds + 1):
            raw = keytypes.primitives_in_subprocess(5, 0.2)
            print(f"\n== round {number} ==")
            print(
                f"{'case':<16}{'conc':>5}{'req/s':>8}{'srv CPU':>9}{'workers':>9}{'timeit':>8}{'in worker':>10}"
                f"{'ovh (timeit)':>13}{'ovh (worker)':>13}{'ratio t':>8}{'ratio w':>8}{'samples':>8}"
            )
            for concurrency in args.concurrency:
                found = {
                    label: attribute(server, scripts, label, concurrency, args.duration, work)
                    for label in CRYPTO_FRAMES
                }
                reference = found[keytypes.REFERENCE]
                ref_timeit = reference.server_cpu_ms - raw["encrypt-32B"]["ms"]
                for label, item in found.items():
                    timeit_ms = raw[keytypes.CASE_BY_LABEL[label].primitive or ""]["ms"]
                    ratio_w = item.overhead_ms / reference.overhead_ms
                    ratio_t = (item.server_cpu_ms - timeit_ms) / ref_timeit
                    ratios.setdefault((label, concurrency), []).append(ratio_w)
                    timeit_ratios.setdefault((label, concurrency), []).append(ratio_t)
                    print(
                        f"{label:<16}{concurrency:>5}{item.rps:>8,.0f}{item.server_cpu_ms:>9.3f}"
                        f"{item.worker_cpu_ms:>9.3f}{timeit_ms:>8.3f}"
                        f"{item.primitive_ms:>10.3f}{item.server_cpu_ms - timeit_ms:>13.3f}{item.overhead_ms:>13.3f}"
                        f"{ratio_t:>8.2f}{ratio_w:>8.2f}{item.samples:>8}",
                        flush=True,
                    )
    print("\n== overhead / overhead(Encrypt-32B), medians of the rounds: timeit subtraction | in-worker attribution ==")
    for (label, concurrency), values in ratios.items():
        if label == keytypes.REFERENCE:
            continue
        print(
            f"  {label:<16} c{concurrency:<3} {statistics.median(timeit_ratios[(label, concurrency)]):.2f} | "
            f"{statistics.median(values):.2f}  {' '.join(f'{v:.2f}' for v in values)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
