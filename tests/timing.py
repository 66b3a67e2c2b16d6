"""Timing-side-channel statistics for docs/tests.md C-4 and C-5 (b), standard library only.

:func:`interleaved_timings` times several classes of call in a fresh random order every round, each on freshly
built inputs and with the garbage collector off, so that drift (CPU frequency, other tenants of a shared machine,
cache state, memory layout) lands on every class alike and cannot masquerade as a difference between them.
:func:`mann_whitney` then asks whether two classes' samples could come from one distribution: two-sided, normal
approximation with tie correction and continuity correction (what ``scipy.stats.mannwhitneyu(method="asymptotic")``
computes), which is accurate for the thousands of samples these tests take and needs only :func:`math.erfc`.

Mann-Whitney over 200k samples notices a shift of a few nanoseconds, so a systematic difference that is not the
code under test (which class runs first, object addresses) is a false finding: measure carefully, do not loosen
the threshold.

Careful measurement still leaves one such shift. Eight back-to-back runs of the SigV4 test in one process gave
p from 2e-6 to 0.99 between "first digit wrong" and "last digit wrong", with a median difference of 0 ns and a
direction that changed from run to run; a paired sign test over the interleaved rounds agreed with Mann-Whitney.
Such shifts stay below a thousandth of the call. So two classes count as *separable* only when the difference is
significant (p below the test's threshold) *and* at least :func:`effect_floor_ns` large: a thousandth of the
median call, and never under 20 ns (two steps of this machine's clock). The leaks these tests exist for are far
above that: an early-exit comparison loop is 1.5 us apart on a 22 us SigV4 check, and the two RSA leaks C-4
found were 0.9 and 3 us on a 330 us Decrypt.
"""

from __future__ import annotations

import gc
import itertools
import math
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

Samples = dict[str, list[int]]


@dataclass(frozen=True, slots=True)
class MannWhitney:
    """U of the first sample, its z-score (continuity-corrected) and the two-sided p-value."""

    u: float
    z: float
    p_value: float


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> MannWhitney:
    """Two-sided Mann-Whitney U test of ``a`` against ``b`` (normal approximation, tie-corrected)."""
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples must be non-empty")
    count_a, count_b = Counter(a), Counter(b)
    rank_sum_a = 0.0
    tie_term = 0  # sum of t^3 - t over groups of t equal values
    below = 0  # values ranked before the current group
    for value in sorted(count_a.keys() | count_b.keys()):
        in_a = count_a.get(value, 0)
        group = in_a + count_b.get(value, 0)
        rank_sum_a += in_a * (below + (group + 1) / 2)  # each tied value gets the group's mean rank
        tie_term += group**3 - group
        below += group
    total = n1 + n2
    u = rank_sum_a - n1 * (n1 + 1) / 2
    mean = n1 * n2 / 2
    variance = n1 * n2 / 12 * ((total + 1) - tie_term / (total * (total - 1)))
    if variance <= 0:  # every value equal: no evidence of any difference
        return MannWhitney(u, 0.0, 1.0)
    z = max(abs(u - mean) - 0.5, 0.0) / math.sqrt(variance)
    return MannWhitney(u, math.copysign(z, u - mean), min(1.0, math.erfc(z / math.sqrt(2))))


def median_difference_ns(a: Sequence[float], b: Sequence[float]) -> float:
    """median(a) - median(b)."""
    return float(statistics.median(a) - statistics.median(b))


def interleaved_timings(
    factories: Mapping[str, Callable[[], Callable[[], object]]],
    rounds: int,
    *,
    warmup: int = 200,
    seed: int | None = None,
    clock: Callable[[], int] = time.perf_counter_ns,
    collect_every: int = 1_000,
) -> Samples:
    """``rounds`` timings (ns) per class; every round times each class once, in a fresh random order.

    Each class is a *factory*: called untimed before every sample, it returns the callable to time, built on
    fresh copies of that class's inputs. Object addresses matter at this resolution: two classes holding
    *identical* inputs in two long-lived objects were separated at p < 1e-9 in 200k SigV4 checks, one way or the
    other from run to run, by where those objects happened to lie in memory. Rebuilt each time and dropped
    right after, the inputs of every class land on the same recycled memory. (:func:`same` wraps a callable
    whose inputs are all shared by the classes.)

    ``warmup`` untimed rounds come first (caches, lazy imports, branch predictors). The garbage collector is
    off while measuring, so a collection cannot land on whichever class allocated last; it runs untimed every
    ``collect_every`` rounds instead (reference cycles would otherwise pile up) and is restored after. A callable
    that is expected to raise must catch its exception itself: anything raised here is a bug.
    """
    names = list(factories)
    rng = random.Random(seed)
    order = names.copy()
    for _ in range(warmup):
        rng.shuffle(order)
        for name in order:
            factories[name]()()
    samples: Samples = {name: [] for name in names}
    appenders = {name: samples[name].append for name in names}
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for index in range(rounds):
            if index % collect_every == collect_every - 1:
                gc.collect(0)
            rng.shuffle(order)
            for name in order:
                call = factories[name]()
                start = clock()
                call()
                elapsed = clock() - start
                del call  # free this sample's inputs before the next class allocates its own
                appenders[name](elapsed)
    finally:
        if was_enabled:
            gc.enable()
    return samples


def same(call: Callable[[], object]) -> Callable[[], Callable[[], object]]:
    """A factory that always returns ``call``."""
    return lambda: call


MIN_EFFECT_NS = 20.0
MIN_EFFECT_FRACTION = 0.001


def effect_floor_ns(median_ns: float) -> float:
    """The smallest median difference that counts as a separation for calls of ``median_ns`` (module docstring)."""
    return max(MIN_EFFECT_NS, MIN_EFFECT_FRACTION * median_ns)


@dataclass(frozen=True, slots=True)
class PairResult:
    first: str
    second: str
    p_value: float
    median_difference_ns: float
    median_ns: float  # the larger of the two classes' medians: what the effect floor scales with

    def separable(self, threshold: float) -> bool:
        """Significant below ``threshold`` and at least :func:`effect_floor_ns` apart."""
        return self.p_value < threshold and abs(self.median_difference_ns) >= effect_floor_ns(self.median_ns)


def compare(samples: Mapping[str, Sequence[int]], first: str, second: str) -> PairResult:
    """Mann-Whitney p-value and median difference of two classes."""
    a, b = samples[first], samples[second]
    median = float(max(statistics.median(a), statistics.median(b)))
    return PairResult(first, second, mann_whitney(a, b).p_value, median_difference_ns(a, b), median)


def pairwise(samples: Mapping[str, Sequence[int]], names: Iterable[str]) -> list[PairResult]:
    """:func:`compare` every pair of ``names``, smallest p-value (most separable pair) first."""
    results = [compare(samples, a, b) for a, b in itertools.combinations(names, 2)]
    return sorted(results, key=lambda result: result.p_value)


def sample_count(default: int) -> int:
    """Samples per class for a test whose docs/tests.md figure is ``default``.

    ``OPENKMS_TIMING_SAMPLES=N`` sets N for every timing test (a quick local run, or a soak);
    ``OPENKMS_TIMING_SCALE=f`` multiplies each test's own figure instead (``0.1`` for a tenth). At least 100.
    """
    absolute = os.environ.get("OPENKMS_TIMING_SAMPLES")
    scale = float(os.environ.get("OPENKMS_TIMING_SCALE", "1"))
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError("OPENKMS_TIMING_SCALE must be a positive number")
    count = int(absolute) if absolute else round(default * scale)
    return max(100, count)


def report(
    title: str, samples: Mapping[str, Sequence[int]], pairs: Sequence[PairResult], distinct: int | None = None
) -> str:
    """The figures docs/tests.md asks for (distinct responses, worst-pair p-value, median differences), for ``-s``."""
    worst = min(pairs, key=lambda pair: pair.p_value) if pairs else None
    head = [title]
    if distinct is not None:
        head.append(f"{distinct} distinct response(s)")
    if worst is not None:
        head.append(f"worst pair {worst.first}/{worst.second} p={worst.p_value:.3g}")
    lines = [": ".join(head[:2]) + "".join(f", {part}" for part in head[2:])]
    for name, values in samples.items():
        lines.append(f"  {name:<20} n={len(values):>7}  median={statistics.median(values):>12.0f} ns")
    for pair in pairs:
        lines.append(
            f"  {pair.first} vs {pair.second}: p={pair.p_value:.3g}, "
            f"median difference {pair.median_difference_ns:+.0f} ns (floor {effect_floor_ns(pair.median_ns):.0f} ns)"
        )
    return "\n".join(lines)
