"""The openkms HTTP benchmark: Encrypt, Decrypt and GenerateDataKey against openkms (SQLite and PostgreSQL) and moto.

    .venv/bin/python benchmarks/run.py [--quick] [--duration 6] [--rounds 3]

Starts three servers (openkms on SQLite, openkms on PostgreSQL, each ``--workers 2``; ``moto_server``), pre-signs
requests (presign.py) and replays them with wrk (wrk_script.py) from one client thread, at concurrency 1 and 32.
Each cell is a 1 s warm-up and then a measured run; the cells of a round are interleaved (for each concurrency, for
each operation, every engine in turn) and rounds repeat that order. Every KMS figure is also a ratio to figures
measured in the same round: to ``GET /healthz`` of the same server (same HTTP stack, no work: the ceiling) and to
moto doing the same operation at the same concurrency. Medians are taken over the per-round ratios.

Per cell it also reads, from /proc, the CPU time of the server's process group (and of the PostgreSQL backends of
the benchmark database), of wrk, and of everything else on the machine (neighbours), plus steal, and how the
connections were spread over the openkms workers. Before a cell it waits (up to ``--quiet-wait`` s) until the
neighbours use at most ``--noise-limit`` cores, and measures a cell again (up to ``--cell-retries``) when they used
more during it. A round left with a noisy cell is flagged and another round is run (up to ``--max-extra-rounds``);
the summary uses the clean rounds, or the least noisy ones when too few were clean.

Writes benchmarks/results/latest.json. Exit status 1 if a cell failed (non-2xx responses, socket errors) or a target
was missed, 2 if something needed is missing (wrk, moto_server).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import presign  # the sibling modules are found through the line above
import wrk_script

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
VENV_BIN = Path(os.path.abspath(sys.executable)).parent  # not resolve(): the venv python is a symlink
ACCESS_KEY_ID = "AKIAOPENKMSBENCH0001"
SECRET_ACCESS_KEY = "openkms-benchmark-secret-not-for-use-anywhere-else"
ACCOUNT_ID = "111122223333"
DEFAULT_POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SIGNATURE_MARGIN_SECONDS = 60  # re-sign a batch when a cell would end closer than this to its expiry

SQLITE, POSTGRES, MOTO = "sqlite", "postgres", "moto"
OPERATIONS = (presign.HEALTHZ, *presign.KMS_OPERATIONS)
TARGET_OPERATION, TARGET_ENGINE, TARGET_CONCURRENCY = "Encrypt", SQLITE, 32
TARGETS = {"rps_min": 3000.0, "p99_ms_max": 25.0, "x_healthz_min": 0.15, "x_moto_min": 10.0}


# -- /proc readings ------------------------------------------------------------------------------------------------
def _proc_stat_fields(pid: str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # fields from "state" on; comm may hold spaces and parentheses


def group_cpu_ticks(pgid: int) -> int:
    """utime + stime (clock ticks) of every live process in process group ``pgid`` (one /proc pass)."""
    total = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            fields = _proc_stat_fields(pid)
            if fields is not None and int(fields[2]) == pgid:
                total += int(fields[11]) + int(fields[12])
    return total


def cpu_ticks(pids: Sequence[int]) -> int:
    """utime + stime (clock ticks) of the live processes among ``pids``."""
    total = 0
    for pid in pids:
        fields = _proc_stat_fields(str(pid))
        if fields is not None:
            total += int(fields[11]) + int(fields[12])
    return total


def worker_pids(pgid: int) -> list[int]:
    """The openkms worker processes of a server group (spawned by multiprocessing; not the resource tracker)."""
    workers = []
    for pid in group_pids(pgid):
        try:
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                workers.append(pid)
        except OSError:
            continue
    return workers


def connections_per_worker(pids: Sequence[int], port: int) -> list[int]:
    """Established TCP connections on local ``port`` held by each pid (socket inodes from /proc/net/tcp*)."""
    established: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    established.add(fields[9])
    counts = []
    for pid in pids:
        count = 0
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    count += link.startswith("socket:[") and link[8:-1] in established
        counts.append(count)
    return counts


def group_pids(pgid: int) -> list[int]:
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            fields = _proc_stat_fields(pid)
            if fields is not None and int(fields[2]) == pgid:
                pids.append(int(pid))
    return sorted(pids)


def postgres_backend_ticks(dbname: str | None) -> int:
    """utime + stime of the PostgreSQL backends connected to ``dbname`` (their title names the database)."""
    if not dbname:
        return 0
    total = 0
    needle = f" {dbname} ".encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"postgres:") and needle in cmdline:
            fields = _proc_stat_fields(pid)
            if fields is not None:
                total += int(fields[11]) + int(fields[12])
    return total


@dataclass(frozen=True, slots=True)
class CpuStat:
    """The aggregate ``cpu`` line of /proc/stat, in clock ticks."""

    at: float
    user: int
    nice: int
    system: int
    idle: int
    iowait: int
    irq: int
    softirq: int
    steal: int

    @classmethod
    def read(cls) -> CpuStat:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:9]]
        return cls(time.monotonic(), *values)

    @property
    def process_time(self) -> int:  # time charged to processes (what utime + stime add up to)
        return self.user + self.nice + self.system

    @property
    def total(self) -> int:
        return self.user + self.nice + self.system + self.idle + self.iowait + self.irq + self.softirq + self.steal


@dataclass(frozen=True, slots=True)
class MachineLoad:
    seconds: float
    busy_cores: float  # user + nice + system + irq + softirq, in cores
    steal_percent: float
    loadavg_1m: float

    @classmethod
    def between(cls, before: CpuStat, after: CpuStat) -> MachineLoad:
        wall = after.at - before.at
        busy = (after.process_time + after.irq + after.softirq) - (before.process_time + before.irq + before.softirq)
        total = after.total - before.total
        steal = 100.0 * (after.steal - before.steal) / total if total else 0.0
        load = float(Path("/proc/loadavg").read_text().split()[0])
        return cls(round(wall, 2), round(busy / CLK_TCK / wall, 3), round(steal, 2), load)


# -- servers -------------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(slots=True)
class Server:
    engine: str
    process: subprocess.Popen[bytes]
    target: presign.Target
    log: Path
    dbname: str | None = None

    @property
    def port(self) -> int:
        return urlsplit(self.target.endpoint).port or 80

    @property
    def pgid(self) -> int:
        return self.process.pid  # started with start_new_session: it leads its own group

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pgid, signal.SIGKILL)
                self.process.wait(timeout=5)


def _http_status(endpoint: str, path: str) -> int | None:
    parts = urlsplit(endpoint)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def _wait_ready(server: Server, path: str, want: int | None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"{server.engine} server exited early; log:\n{server.log.read_text()[-2000:]}")
        status = _http_status(server.target.endpoint, path)
        if status is not None and (want is None or status == want):
            return
        time.sleep(0.2)
    raise SystemExit(f"{server.engine} server not ready after {timeout:.0f} s; log:\n{server.log.read_text()[-2000:]}")


def _ready_or_stop(server: Server, path: str, want: int | None) -> None:
    try:
        _wait_ready(server, path, want)
    except BaseException:
        server.stop()
        raise


def start_openkms(
    engine: str,
    workdir: Path,
    workers: int,
    database_url: str | None,
    dbname: str | None,
    extra_args: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
) -> Server:
    """``openkms serve --dev`` in its own process group; ``extra_env`` is added to this process's environment."""
    port = free_port()
    data_dir = workdir / f"data-{engine}"
    log = workdir / f"{engine}.log"
    cmd = [
        str(VENV_BIN / "openkms"),
        "serve",
        "--dev",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--dev-access-key-id",
        ACCESS_KEY_ID,
        "--dev-secret-access-key",
        SECRET_ACCESS_KEY,
        "--dev-account-id",
        ACCOUNT_ID,
    ]
    if database_url is not None:
        cmd += ["--database-url", database_url]
    cmd += list(extra_args)
    with log.open("wb") as out:
        process = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=workdir,
            env={**os.environ, **extra_env} if extra_env else None,
        )
    target = presign.Target(engine, f"http://127.0.0.1:{port}", ACCESS_KEY_ID, SECRET_ACCESS_KEY)
    server = Server(engine, process, target, log, dbname)
    _ready_or_stop(server, "/healthz", 200)
    return server


def start_moto(workdir: Path) -> Server:
    moto = shutil.which("moto_server", path=str(VENV_BIN)) or shutil.which("moto_server")
    if moto is None:
        raise SystemExit("moto_server is required: .venv/bin/pip install 'moto[server]'  (pip install -e '.[bench]')")
    port = free_port()
    log = workdir / "moto.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [moto, "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=workdir,
        )
    target = presign.Target(MOTO, f"http://127.0.0.1:{port}", "AKIAMOTOBENCH0000001", "moto-secret")
    server = Server(MOTO, process, target, log)
    _ready_or_stop(server, "/", None)
    return server


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[tuple[str, str]]:
    """A fresh database next to ``admin_url``'s, dropped afterwards: yields (url, name)."""
    import psycopg
    from psycopg import sql

    name = f"openkms_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path="/" + name)), name
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# -- cells ---------------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Cell:
    round: int
    engine: str
    operation: str
    concurrency: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    requests: int
    seconds: float
    server_cpu_ms_per_request: float
    db_cpu_ms_per_request: float
    client_cpu_cores: float
    neighbour_cpu_cores: float
    steal_percent: float
    failure: str | None = None
    x_healthz: float | None = None
    x_moto: float | None = None
    # Established connections held by each openkms worker 1 s into the run: the kernel hands a connection to
    # whichever worker accepts first, so 32 connections can land 31/1 and leave one core idle.
    connections_per_worker: list[int] = field(default_factory=list)
    attempts: int = 1  # measurements of this cell (more than 1 when neighbours made earlier ones noisy)


class Scripts:
    """Pre-signed batches and their wrk scripts per (engine, operation); re-signed before they could expire."""

    def __init__(self, directory: Path, count: int) -> None:
        self._directory = directory
        self._count = count
        self._fixtures: dict[str, presign.KeyFixture] = {}
        self._batches: dict[tuple[str, str], tuple[presign.Batch, Path]] = {}

    def prepare(self, server: Server) -> None:
        self._fixtures[server.engine] = presign.prepare_key(server.target)

    def get(self, server: Server, operation: str, needed_until: float) -> tuple[presign.Batch, Path]:
        key = (server.engine, operation)
        cached = self._batches.get(key)
        if cached is None or cached[0].expires_at < needed_until + SIGNATURE_MARGIN_SECONDS:
            if cached is not None:
                cached[1].unlink(missing_ok=True)
            batch = self._presign(server, operation)
            status, body = presign.send_once(server.target, batch.requests[0])
            if status != 200:
                raise SystemExit(f"{server.engine} {operation}: a pre-signed request got {status}: {body[:300]!r}")
            cached = (batch, wrk_script.write(batch, self._directory))
            self._batches[key] = cached
        return cached

    def _presign(self, server: Server, operation: str) -> presign.Batch:
        """A fresh batch for one cell (keytypes.py overrides this and :meth:`prepare` for its own requests)."""
        return presign.presign(server.target, self._fixtures.get(server.engine), operation, self._count)


@dataclass(frozen=True, slots=True)
class Plan:
    wrk: str
    duration: int
    warmup: int
    threads: int


def _run_wrk(cmd: list[str], log_dir: Path, server: Server | None = None) -> tuple[str, float, list[int]]:
    """Run wrk to completion; (stdout + stderr, CPU seconds it used, connections per openkms worker 1 s in)."""
    connections: list[int] = []
    with tempfile.TemporaryFile(dir=log_dir) as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        if server is not None and server.engine != MOTO:
            time.sleep(1.0)
            connections = connections_per_worker(worker_pids(server.pgid), server.port)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if process.returncode != 0:
        text += f"\n(wrk exited with {process.returncode})"
    return text, usage.ru_utime + usage.ru_stime, connections


def run_cell(plan: Plan, scripts: Scripts, server: Server, operation: str, concurrency: int, round_no: int) -> Cell:
    needed_until = time.time() + plan.warmup + plan.duration + 5
    batch, script = scripts.get(server, operation, needed_until)
    url = server.target.endpoint + "/"
    threads = min(plan.threads, concurrency)
    if plan.warmup > 0:
        _run_wrk(wrk_script.command(plan.wrk, script, url, concurrency, threads, plan.warmup), script.parent)
    server_before = group_cpu_ticks(server.pgid)
    db_before = postgres_backend_ticks(server.dbname)
    machine_before = CpuStat.read()
    text, client_cpu, connections = _run_wrk(
        wrk_script.command(plan.wrk, script, url, concurrency, threads, plan.duration), script.parent, server
    )
    machine_after = CpuStat.read()
    server_ticks = group_cpu_ticks(server.pgid) - server_before
    db_ticks = postgres_backend_ticks(server.dbname) - db_before
    result = wrk_script.parse(text)
    wall = machine_after.at - machine_before.at
    ours = server_ticks + db_ticks + client_cpu * CLK_TCK
    neighbours = max(0.0, (machine_after.process_time - machine_before.process_time) - ours) / CLK_TCK / wall
    load = MachineLoad.between(machine_before, machine_after)
    failure = result.failure
    if failure is not None:
        try:
            status, body = presign.send_once(server.target, batch.requests[0])
            failure += f" (one request sent again: HTTP {status} {body[:200]!r})"
        except OSError as exc:
            failure += f" (one request sent again: {exc})"
    per_request = 1000.0 / CLK_TCK / max(result.requests, 1)
    return Cell(
        round=round_no,
        engine=server.engine,
        operation=operation,
        concurrency=concurrency,
        rps=round(result.rps, 1),
        p50_ms=round(result.p50_ms, 3),
        p90_ms=round(result.p90_ms, 3),
        p99_ms=round(result.p99_ms, 3),
        p999_ms=round(result.p999_ms, 3),
        max_ms=round(result.max_ms, 3),
        requests=result.requests,
        seconds=round(result.duration_s, 3),
        server_cpu_ms_per_request=round(server_ticks * per_request, 4),
        db_cpu_ms_per_request=round(db_ticks * per_request, 4),
        client_cpu_cores=round(client_cpu / wall, 3),
        neighbour_cpu_cores=round(neighbours, 3),
        steal_percent=load.steal_percent,
        failure=failure,
        connections_per_worker=connections,
    )


def neighbour_cores(servers: Sequence[Server], seconds: float = 1.0) -> float:
    """CPU (in cores) used over ``seconds`` by everything but our idle servers and their database backends."""

    def ours() -> int:
        return sum(group_cpu_ticks(s.pgid) + postgres_backend_ticks(s.dbname) for s in servers)

    mine_before, before = ours(), CpuStat.read()
    time.sleep(seconds)
    after, mine_after = CpuStat.read(), ours()
    others = (after.process_time - before.process_time) - (mine_after - mine_before)
    return max(0.0, others) / CLK_TCK / (after.at - before.at)


def wait_quiet(servers: Sequence[Server], limit: float, max_wait: float) -> float:
    """Wait (at most ``max_wait`` s) until neighbours use at most ``limit`` cores; returns the last reading."""
    deadline = time.monotonic() + max_wait
    others = neighbour_cores(servers)
    announced = False
    while others > limit and time.monotonic() < deadline:
        if not announced:
            print(f"   (neighbours use {others:.2f} cores; waiting up to {max_wait:.0f} s for quiet)", flush=True)
            announced = True
        others = neighbour_cores(servers)
    return others


def measure(
    plan: Plan,
    scripts: Scripts,
    servers: Sequence[Server],
    server: Server,
    operation: str,
    concurrency: int,
    round_no: int,
    args: argparse.Namespace,
) -> Cell:
    """One cell, run again (after waiting for quiet) while a neighbour used more than the noise limit."""
    attempts = 0
    while True:
        if args.quiet_wait > 0:
            wait_quiet(servers, args.noise_limit, args.quiet_wait)
        cell = run_cell(plan, scripts, server, operation, concurrency, round_no)
        cell.attempts = attempts + 1
        if cell.neighbour_cpu_cores <= args.noise_limit or attempts >= args.cell_retries or cell.failure:
            return cell
        attempts += 1
        print(f"   (noisy: {cell_line(cell).strip()}; measuring again)", flush=True)


# -- rounds --------------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Round:
    number: int
    cells: list[Cell]
    load: MachineLoad
    noisy: bool
    used: bool = False
    notes: list[str] = field(default_factory=list)


def _find(cells: Sequence[Cell], engine: str, operation: str, concurrency: int) -> Cell | None:
    for cell in cells:
        if (cell.engine, cell.operation, cell.concurrency) == (engine, operation, concurrency) and not cell.failure:
            return cell
    return None


def add_ratios(cells: list[Cell]) -> None:
    """Ratios within one round: to the same server's /healthz (moto: to SQLite's) and to moto's same operation."""
    for cell in cells:
        if cell.failure:
            continue
        ceiling = _find(cells, SQLITE if cell.engine == MOTO else cell.engine, presign.HEALTHZ, cell.concurrency)
        if ceiling is not None and ceiling.rps > 0:
            cell.x_healthz = round(cell.rps / ceiling.rps, 4)
        peer = _find(cells, MOTO, cell.operation, cell.concurrency)
        if peer is not None and peer.rps > 0 and cell.operation != presign.HEALTHZ:
            cell.x_moto = round(cell.rps / peer.rps, 3)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


HEADER = (
    f"{'engine':<9}{'operation':<16}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
    f"{'x healthz':>11}{'x moto':>9}{'srv CPU ms/req':>16}{'db ms/req':>11}{'wrk cores':>11}{'others':>8}"
    f"{'conns/worker':>14}"
)


def cell_line(cell: Cell) -> str:
    line = (
        f"{cell.engine:<9}{cell.operation:<16}{cell.concurrency:>5}{cell.rps:>10,.0f}{cell.p50_ms:>9.2f}"
        f"{cell.p99_ms:>9.2f}{_fmt(cell.x_healthz, '.3f'):>11}{_fmt(cell.x_moto, '.1f'):>9}"
        f"{cell.server_cpu_ms_per_request:>16.3f}{cell.db_cpu_ms_per_request:>11.3f}"
        f"{cell.client_cpu_cores:>11.2f}{cell.neighbour_cpu_cores:>8.2f}"
        f"{'+'.join(map(str, cell.connections_per_worker)) or '-':>14}"
    )
    if cell.attempts > 1:
        line += f"  (attempt {cell.attempts})"
    return line + (f"  FAILED: {cell.failure}" if cell.failure else "")


def run_round(number: int, plan: Plan, scripts: Scripts, servers: Sequence[Server], args: argparse.Namespace) -> Round:
    print(f"\n== round {number} ==\n{HEADER}", flush=True)
    before = CpuStat.read()
    cells: list[Cell] = []
    for concurrency in args.concurrency:
        for operation in OPERATIONS:
            for server in servers:
                if server.engine == MOTO and operation == presign.HEALTHZ:
                    continue  # moto has no trivial endpoint on the openkms stack; its ratio uses SQLite's
                if server.engine == MOTO and args.quick and operation != TARGET_OPERATION:
                    continue
                cell = measure(plan, scripts, servers, server, operation, concurrency, number, args)
                cells.append(cell)
                print(cell_line(cell), flush=True)
    add_ratios(cells)
    load = MachineLoad.between(before, CpuStat.read())
    noisy = any(cell.neighbour_cpu_cores > args.noise_limit for cell in cells)
    result = Round(number, cells, load, noisy)
    print(f"-- round {number} with ratios --\n{HEADER}")
    for cell in cells:
        print(cell_line(cell))
    worst = max((cell.neighbour_cpu_cores for cell in cells), default=0.0)
    print(
        f"-- round {number}: {load.seconds:.0f} s, machine busy {load.busy_cores:.2f} cores, steal "
        f"{load.steal_percent:.1f} %, load average {load.loadavg_1m:.2f}, worst neighbour CPU in a cell "
        f"{worst:.2f} cores{' (NOISY: above ' + str(args.noise_limit) + ')' if noisy else ''}",
        flush=True,
    )
    return result


def choose_rounds(rounds: list[Round], wanted: int) -> list[Round]:
    clean = [r for r in rounds if not r.noisy]
    if len(clean) >= wanted:
        chosen = clean[:wanted]
    else:
        noisy = sorted((r for r in rounds if r.noisy), key=lambda r: max(c.neighbour_cpu_cores for c in r.cells))
        chosen = sorted(clean + noisy[: wanted - len(clean)], key=lambda r: r.number)
    for r in chosen:
        r.used = True
    return chosen


# -- summary -------------------------------------------------------------------------------------------------------
def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(rounds: Sequence[Round]) -> list[dict[str, Any]]:
    keys: list[tuple[str, str, int]] = []
    for r in rounds:
        for c in r.cells:
            if (c.engine, c.operation, c.concurrency) not in keys:
                keys.append((c.engine, c.operation, c.concurrency))
    rows = []
    for engine, operation, concurrency in keys:
        cells = [
            c
            for r in rounds
            for c in r.cells
            if (c.engine, c.operation, c.concurrency) == (engine, operation, concurrency)
        ]
        good = [c for c in cells if not c.failure]
        rows.append(
            {
                "engine": engine,
                "operation": operation,
                "concurrency": concurrency,
                "rounds": len(cells),
                "failed_rounds": len(cells) - len(good),
                "rps": _median([c.rps for c in good]),
                "p50_ms": _median([c.p50_ms for c in good]),
                "p99_ms": _median([c.p99_ms for c in good]),
                "p99_ms_worst": max((c.p99_ms for c in good), default=None),
                "x_healthz": _median([c.x_healthz for c in good]),
                "x_moto": _median([c.x_moto for c in good]),
                "server_cpu_ms_per_request": _median([c.server_cpu_ms_per_request for c in good]),
                "db_cpu_ms_per_request": _median([c.db_cpu_ms_per_request for c in good]),
                "x_healthz_per_round": [c.x_healthz for c in cells],
                "x_moto_per_round": [c.x_moto for c in cells],
            }
        )
    return rows


def _uneven(connections: Sequence[int]) -> bool:
    total = sum(connections)
    return total > 0 and min(connections) < total / (4 * (len(connections) / 2))


def print_summary(rows: Sequence[dict[str, Any]], rounds: Sequence[Round]) -> None:
    used = ", ".join(str(r.number) for r in rounds)
    print(f"\n== summary: median over rounds {used} (ratios: median of the per-round ratios) ==")
    print(
        f"{'engine':<9}{'operation':<16}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'x healthz':>11}"
        f"{'x moto':>9}{'srv CPU ms/req':>16}{'db ms/req':>11}   per-round x healthz / x moto"
    )
    for row in rows:
        per_round = " ".join(_fmt(v, ".3f") for v in row["x_healthz_per_round"])
        per_moto = " ".join(_fmt(v, ".1f") for v in row["x_moto_per_round"])
        failed = f"  ({row['failed_rounds']} FAILED)" if row["failed_rounds"] else ""
        print(
            f"{row['engine']:<9}{row['operation']:<16}{row['concurrency']:>5}{_fmt(row['rps'], ',.0f'):>10}"
            f"{_fmt(row['p50_ms'], '.2f'):>9}{_fmt(row['p99_ms'], '.2f'):>9}{_fmt(row['x_healthz'], '.3f'):>11}"
            f"{_fmt(row['x_moto'], '.1f'):>9}{_fmt(row['server_cpu_ms_per_request'], '.3f'):>16}"
            f"{_fmt(row['db_cpu_ms_per_request'], '.3f'):>11}   [{per_round}] / [{per_moto}]{failed}"
        )
    uneven = [
        f"round {r.number} {c.engine} {c.operation} c{c.concurrency}: {'+'.join(map(str, c.connections_per_worker))}"
        for r in rounds
        for c in r.cells
        if len(c.connections_per_worker) > 1 and c.concurrency > 1 and _uneven(c.connections_per_worker)
    ]
    if uneven:
        print("connections split unevenly between workers (one worker held less than a quarter):")
        for line in uneven:
            print(f"  {line}")
    for r in rounds:
        load = r.load
        print(
            f"round {r.number}: steal {load.steal_percent:.1f} %, machine busy {load.busy_cores:.2f} cores, "
            f"load average {load.loadavg_1m:.2f}, worst neighbour {max(c.neighbour_cpu_cores for c in r.cells):.2f}"
            " cores"
        )


def check_targets(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    row = next(
        (
            r
            for r in rows
            if (r["engine"], r["operation"], r["concurrency"]) == (TARGET_ENGINE, TARGET_OPERATION, TARGET_CONCURRENCY)
        ),
        None,
    )
    if row is None:
        return [{"target": "Encrypt 4 KiB c32 SQLite", "met": False, "value": None, "why": "not measured"}]
    checks = [
        ("req/s >= 3,000", row["rps"], row["rps"] is not None and row["rps"] >= TARGETS["rps_min"]),
        ("p99 < 25 ms", row["p99_ms"], row["p99_ms"] is not None and row["p99_ms"] < TARGETS["p99_ms_max"]),
        (
            ">= 0.15 x healthz",
            row["x_healthz"],
            row["x_healthz"] is not None and row["x_healthz"] >= TARGETS["x_healthz_min"],
        ),
        (">= 10 x moto", row["x_moto"], row["x_moto"] is not None and row["x_moto"] >= TARGETS["x_moto_min"]),
    ]
    return [{"target": f"Encrypt 4 KiB c32 SQLite {name}", "value": v, "met": ok} for name, v, ok in checks]


def machine_info(wrk: str) -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        model = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if "model name" in ln
            ),
            "",
        )
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"], capture_output=True, text=True)
    try:
        from importlib.metadata import version

        moto_version = version("moto")
    except Exception:
        moto_version = "unknown"
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk_script.wrk_version(wrk),
        "moto": moto_version,
        "openkms_commit": commit.strip(),
        "src_dirty": bool(dirty.stdout.strip()),
    }


# -- main ----------------------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, 2 s cells, moto Encrypt only")
    parser.add_argument("--duration", type=int, default=None, help="seconds per measured cell (default 6; quick 2)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up before each cell (default 1)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3; quick 1)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: keep the client cheap)")
    parser.add_argument("--workers", type=int, default=2, help="openkms worker processes (default 2)")
    parser.add_argument("--requests", type=int, default=2000, help="distinct pre-signed requests per cell")
    parser.add_argument("--noise-limit", type=float, default=0.5, help="neighbour cores that make a round noisy")
    parser.add_argument("--cell-retries", type=int, default=None, help="re-measure a noisy cell (default 2)")
    parser.add_argument("--quiet-wait", type=float, default=None, help="max s to wait for quiet (default 60)")
    parser.add_argument("--max-extra-rounds", type=int, default=None, help="repeats of noisy rounds (default 2)")
    parser.add_argument("--postgres-url", default=os.environ.get("OPENKMS_BENCH_POSTGRES_URL"), help="admin URL")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL engine")
    parser.add_argument("--no-moto", action="store_true", help="skip moto (no x moto ratios)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, scripts, data)")
    args = parser.parse_args(argv)
    args.duration = args.duration or (2 if args.quick else 6)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.max_extra_rounds is None:
        args.max_extra_rounds = 0 if args.quick else 2
    if args.cell_retries is None:
        args.cell_retries = 0 if args.quick else 2
    if args.quiet_wait is None:
        args.quiet_wait = 0.0 if args.quick else 60.0
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        print(wrk_script.INSTALL_HINT, file=sys.stderr)
        return 2
    plan = Plan(wrk, args.duration, args.warmup, args.threads)
    workdir = Path(tempfile.mkdtemp(prefix="openkms-bench-"))
    servers: list[Server] = []
    notes: list[str] = []
    with contextlib.ExitStack() as stack:  # unwinds in reverse: servers stop, then the database goes, then files
        if not args.keep:
            stack.callback(shutil.rmtree, workdir, True)
        else:
            print(f"work directory kept: {workdir}")
        database: tuple[str, str] | None = None
        if not args.no_postgres:
            admin_url = args.postgres_url or DEFAULT_POSTGRES_ADMIN_URL
            try:
                database = stack.enter_context(postgres_database(admin_url))
            except Exception as exc:
                note = f"PostgreSQL skipped: cannot create a database via {admin_url}: {exc}"
                print(note, file=sys.stderr)
                notes.append(note)
        servers.append(start_openkms(SQLITE, workdir, args.workers, None, None))
        stack.callback(servers[-1].stop)
        if database is not None:
            servers.append(start_openkms(POSTGRES, workdir, args.workers, *database))
            stack.callback(servers[-1].stop)
        if not args.no_moto:
            servers.append(start_moto(workdir))
            stack.callback(servers[-1].stop)
        scripts = Scripts(workdir, args.requests)
        for server in servers:
            scripts.prepare(server)
            pids = group_pids(server.pgid)
            print(f"{server.engine}: {server.target.endpoint} pids {pids} (log {server.log})")
        print(
            f"cells: {args.warmup} s warm-up + {args.duration} s measured, wrk -t{args.threads}, "
            f"concurrency {args.concurrency}, {args.requests} pre-signed requests per cell, "
            f"openkms --workers {args.workers}, {args.rounds} round(s)",
            flush=True,
        )
        rounds: list[Round] = []
        while len([r for r in rounds if not r.noisy]) < args.rounds:
            if len(rounds) >= args.rounds + args.max_extra_rounds:
                break
            rounds.append(run_round(len(rounds) + 1, plan, scripts, servers, args))
    chosen = choose_rounds(rounds, args.rounds)
    rows = summarize(chosen)
    print_summary(rows, chosen)
    targets = check_targets(rows)
    print("\ntargets (Encrypt 4 KiB, concurrency 32, SQLite; medians):")
    for t in targets:
        print(f"  {'MET    ' if t['met'] else 'NOT MET'}  {t['target']}: {_fmt(t['value'], ',.3f')}")
    failures = [c for r in rounds for c in r.cells if c.failure]
    for note in notes:
        print(f"note: {note}")
    report = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "argv": sys.argv[1:],
        "config": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "concurrency": args.concurrency,
            "wrk_threads": args.threads,
            "openkms_workers": args.workers,
            "requests_per_cell": args.requests,
            "noise_limit_cores": args.noise_limit,
            "cell_retries": args.cell_retries,
            "quiet_wait_s": args.quiet_wait,
            "max_extra_rounds": args.max_extra_rounds,
            "plaintext_bytes": presign.PLAINTEXT_BYTES,
        },
        "machine": machine_info(wrk),
        "notes": notes,
        "summary": rows,
        "targets": targets,
        "rounds": [
            {
                "number": r.number,
                "used": r.used,
                "noisy": r.noisy,
                "load": asdict(r.load),
                "cells": [asdict(c) for c in r.cells],
            }
            for r in rounds
        ],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {args.output}")
    if failures:
        print(f"{len(failures)} cell(s) FAILED", file=sys.stderr)
    return 1 if failures or not all(t["met"] for t in targets) else 0


if __name__ == "__main__":
    sys.exit(main())
