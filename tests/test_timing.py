"""The statistics behind the timing tests (tests/timing.py), checked against exact enumeration and a published value."""

from __future__ import annotations

import functools
import gc
import itertools
import math
import random
import statistics
import weakref
from collections.abc import Sequence

import pytest

from tests import timing


def brute_force_u(a: Sequence[float], b: Sequence[float]) -> float:
    """U of ``a``: pairs where a's value is larger, ties counting half (the definition, O(n1 * n2))."""
    return sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in a for y in b)


def test_scipy_documented_example() -> None:
    """scipy.stats.mannwhitneyu's own example (asymptotic, two-sided, continuity): U = 17, p = 0.11134688653314041."""
    males, females = [19, 22, 16, 29, 24], [20, 11, 17, 12]
    result = timing.mann_whitney(males, females)
    assert result.u == 17
    assert result.p_value == pytest.approx(0.11134688653314041, rel=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_u_and_tie_corrected_variance_match_exact_enumeration(seed: int) -> None:
    """Under the null every split of the pooled values is equally likely; U's exact mean and variance over all
    splits are what the normal approximation must use, ties included."""
    rng = random.Random(seed)
    pooled = [rng.choice([1, 2, 2, 3, 5, 5, 5, 8]) for _ in range(11)]  # many ties
    n1 = 5
    a, b = pooled[:n1], pooled[n1:]
    result = timing.mann_whitney(a, b)
    assert result.u == brute_force_u(a, b)
    us = []
    for chosen in itertools.combinations(range(len(pooled)), n1):
        rest = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        us.append(brute_force_u([pooled[i] for i in chosen], rest))
    mean, variance = statistics.fmean(us), statistics.pvariance(us)
    assert mean == pytest.approx(n1 * (len(pooled) - n1) / 2)
    if variance == 0:
        assert result.p_value == 1.0
        return
    expected_z = max(abs(result.u - mean) - 0.5, 0.0) / math.sqrt(variance)
    assert abs(result.z) == pytest.approx(expected_z, rel=1e-9)
    assert result.p_value == pytest.approx(math.erfc(expected_z / math.sqrt(2)), rel=1e-9)


def test_all_values_equal_is_no_evidence() -> None:
    result = timing.mann_whitney([7] * 50, [7] * 80)
    assert (result.z, result.p_value) == (0.0, 1.0)


def test_symmetric_in_its_arguments() -> None:
    rng = random.Random(1)
    a = [rng.gauss(100, 10) for _ in range(300)]
    b = [rng.gauss(102, 10) for _ in range(200)]
    forward, backward = timing.mann_whitney(a, b), timing.mann_whitney(b, a)
    assert forward.p_value == pytest.approx(backward.p_value)
    assert forward.z == pytest.approx(-backward.z)
    assert forward.u + backward.u == len(a) * len(b)


def test_identical_distributions_give_large_p() -> None:
    rng = random.Random(2)
    a = [round(rng.lognormvariate(10, 0.3)) for _ in range(20_000)]
    b = [round(rng.lognormvariate(10, 0.3)) for _ in range(20_000)]
    assert timing.mann_whitney(a, b).p_value > 0.01


def test_p_values_are_calibrated_under_the_null() -> None:
    """About 5% of same-distribution comparisons fall below 0.05, also with heavy ties (integer timings)."""
    rng = random.Random(3)
    below = 0
    trials = 400
    for _ in range(trials):
        a = [rng.randrange(10) for _ in range(200)]
        b = [rng.randrange(10) for _ in range(150)]
        below += timing.mann_whitney(a, b).p_value < 0.05
    assert 0.025 < below / trials < 0.085, below


def test_clearly_shifted_distributions_give_tiny_p() -> None:
    rng = random.Random(4)
    a = [rng.gauss(1000, 50) for _ in range(5_000)]
    b = [rng.gauss(1010, 50) for _ in range(5_000)]  # a shift of a fifth of the spread
    result = timing.mann_whitney(a, b)
    assert result.p_value < 1e-12
    assert result.z < 0  # a is the smaller one


def test_shift_detected_in_heavily_tied_data() -> None:
    rng = random.Random(5)
    a = [rng.choice([1, 1, 2, 3]) for _ in range(5_000)]
    b = [rng.choice([1, 2, 3, 3]) for _ in range(5_000)]
    assert timing.mann_whitney(a, b).p_value < 1e-12


def test_empty_sample_is_an_error() -> None:
    with pytest.raises(ValueError):
        timing.mann_whitney([], [1])


def test_median_difference() -> None:
    assert timing.median_difference_ns([1, 2, 30], [1, 1, 1, 1]) == 1.0


def test_interleaved_timings_randomises_order_and_measures_each_class() -> None:
    calls: list[str] = []
    gc_states: list[bool] = []
    ticks = itertools.count(0, 5)

    def probe(name: str) -> None:
        calls.append(name)
        gc_states.append(gc.isenabled())

    factories = {name: timing.same(functools.partial(probe, name)) for name in "abc"}
    assert gc.isenabled()
    samples = timing.interleaved_timings(factories, 300, warmup=10, seed=7, clock=lambda: next(ticks))
    assert gc.isenabled()
    assert {name: len(values) for name, values in samples.items()} == {"a": 300, "b": 300, "c": 300}
    assert all(value == 5 for values in samples.values() for value in values)  # one clock pair around one call
    assert len(calls) == 3 * 310
    measured = calls[30:]
    rounds = [measured[i : i + 3] for i in range(0, len(measured), 3)]
    assert all(sorted(round_) == ["a", "b", "c"] for round_ in rounds)  # every class once per round
    firsts = {round_[0] for round_ in rounds}
    assert firsts == {"a", "b", "c"}  # and no class always first
    assert len({tuple(round_) for round_ in rounds}) == 6
    assert not any(gc_states[30:])  # no collection can land on one class
    assert all(gc_states[:30])


class Sample:
    """A callable standing for one sample's freshly built inputs."""

    def __call__(self) -> None:
        pass


def test_each_sample_gets_fresh_inputs_freed_before_the_next() -> None:
    made: list[weakref.ref[Sample]] = []

    def factory() -> Sample:
        assert all(ref() is None for ref in made), "an earlier sample's inputs are still alive"
        sample = Sample()
        made.append(weakref.ref(sample))
        return sample

    samples = timing.interleaved_timings({"a": factory, "b": factory}, 50, warmup=5)
    assert len(made) == 2 * 55
    assert len(samples["a"]) == len(samples["b"]) == 50


def test_interleaved_timings_restores_a_disabled_gc() -> None:
    gc.disable()
    try:
        timing.interleaved_timings({"a": timing.same(lambda: None)}, 5, warmup=0)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_reference_cycles_are_collected_between_rounds_not_during_them() -> None:
    """With the collector off, cycles made by the code under test would pile up for 200k rounds."""
    cycles: list[weakref.ref[Sample]] = []

    def make_cycle() -> None:
        node = Sample()
        node.self = node  # type: ignore[attr-defined]
        cycles.append(weakref.ref(node))

    timing.interleaved_timings({"a": timing.same(make_cycle)}, 100, warmup=0, collect_every=10)
    assert sum(ref() is not None for ref in cycles) < 10


def test_pairwise_puts_the_most_separable_pair_first() -> None:
    rng = random.Random(6)
    samples = {
        "x": [rng.randrange(100, 200) for _ in range(2_000)],
        "y": [rng.randrange(100, 200) for _ in range(2_000)],
        "z": [rng.randrange(150, 250) for _ in range(2_000)],
    }
    pairs = timing.pairwise(samples, ["x", "y", "z"])
    assert len(pairs) == 3
    assert [pair.p_value for pair in pairs] == sorted(pair.p_value for pair in pairs)
    assert "z" in (pairs[0].first, pairs[0].second)
    assert pairs[0].p_value < 1e-12
    assert pairs[-1].first == "x" and pairs[-1].second == "y"


def test_effect_floor_is_a_thousandth_of_the_call_and_at_least_20_ns() -> None:
    assert timing.effect_floor_ns(17_600) == 20
    assert timing.effect_floor_ns(57_000) == pytest.approx(57)
    assert timing.effect_floor_ns(330_000) == pytest.approx(330)


def test_separable_needs_significance_and_a_difference_above_the_floor() -> None:
    def pair(p_value: float, difference: float, median: float = 330_000) -> timing.PairResult:
        return timing.PairResult("a", "b", p_value, difference, median)

    assert pair(1e-9, -900).separable(0.001)  # C-4's smaller RSA leak: 0.9 us on a 330 us Decrypt
    assert pair(1e-9, 3_000).separable(0.001)
    assert not pair(1e-9, 0, 17_600).separable(0.001)  # the SigV4 artefact: significant, 0 ns apart
    assert not pair(1e-9, 190).separable(0.001)  # under a thousandth of the call
    assert not pair(0.002, 5_000).separable(0.001)  # large but not significant
    assert pair(1e-9, 1_500, 22_000).separable(0.001)  # an early-exit loop on a SigV4 check


def test_compare_reports_the_larger_median() -> None:
    rng = random.Random(8)
    samples = {"fast": [rng.randrange(1_000, 1_100) for _ in range(3_000)]}
    samples["slow"] = [value + 500 for value in samples["fast"]]
    result = timing.compare(samples, "fast", "slow")
    assert result.median_ns == statistics.median(samples["slow"])
    assert result.median_difference_ns == -500
    assert result.separable(0.001)


def test_sample_count_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENKMS_TIMING_SAMPLES", raising=False)
    monkeypatch.delenv("OPENKMS_TIMING_SCALE", raising=False)
    assert timing.sample_count(20_000) == 20_000
    monkeypatch.setenv("OPENKMS_TIMING_SCALE", "0.1")
    assert timing.sample_count(20_000) == 2_000
    assert timing.sample_count(500) == 100  # never fewer than 100
    monkeypatch.setenv("OPENKMS_TIMING_SAMPLES", "3000")
    assert timing.sample_count(20_000) == 3_000
    monkeypatch.setenv("OPENKMS_TIMING_SCALE", "0")
    with pytest.raises(ValueError):
        timing.sample_count(20_000)
