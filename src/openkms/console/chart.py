"""A stacked bar chart of requests per key per day, as geometry the template draws as inline SVG.

No script and no external library: the page stays fast, works without JavaScript and under a strict CSP.
Each bar segment carries a title (shown on hover and read by screen readers); the table beside the chart
holds the same numbers.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

WIDTH, HEIGHT = 1000, 260
LEFT, BOTTOM, TOP = 56, 28, 10
MAX_SERIES = 8  # the busiest keys get a colour each; the rest are summed as "other keys"
# Colour-blind-safe (Okabe-Ito) with grey for "other".
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000", "#999999")


@dataclass(frozen=True, slots=True)
class Segment:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    segments: list[Segment]
    series: list[tuple[str, str]]  # (label, colour) for the legend
    ticks: list[tuple[float, str]]  # (y, label) of the value axis
    days: list[tuple[float, str]]  # (x, label) of the day axis, thinned to fit
    baseline: float
    left: int


def _days(first: datetime.date, last: datetime.date) -> list[str]:
    count = (last - first).days + 1
    return [(first + datetime.timedelta(days=i)).isoformat() for i in range(max(count, 0))]


def _nice(top: int) -> int:
    step = 1
    while step * 10 < top:
        step *= 10
    for factor in (1, 2, 5, 10):
        if step * factor >= top:
            return step * factor
    return step * 10


def build(rows: Sequence[Mapping[str, Any]], first: str, last: str, labels: Mapping[str, str]) -> Chart:
    """``rows`` are the usage report's (KeyId, Day, Requests); ``labels`` name keys (an alias if any)."""
    days = _days(datetime.date.fromisoformat(first), datetime.date.fromisoformat(last))
    totals: dict[str, int] = {}
    for row in rows:
        totals[row["KeyId"]] = totals.get(row["KeyId"], 0) + int(row["Requests"])
    ranked = sorted(totals, key=lambda k: (-totals[k], k))
    named = ranked[:MAX_SERIES]
    series = [(labels.get(k, k[:8]), COLOURS[i]) for i, k in enumerate(named)]
    if len(ranked) > MAX_SERIES:
        series.append(("other keys", COLOURS[-1]))
    index = {k: i for i, k in enumerate(named)}
    stacks: dict[str, list[int]] = {day: [0] * len(series) for day in days}
    for row in rows:
        if row["Day"] in stacks:
            stacks[row["Day"]][index.get(row["KeyId"], len(series) - 1)] += int(row["Requests"])
    top = _nice(max([sum(v) for v in stacks.values()] + [1]))
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(len(days), 1)
    bar = max(slot * 0.7, 1.0)
    segments: list[Segment] = []
    for i, day in enumerate(days):
        y = float(HEIGHT - BOTTOM)
        for s, count in enumerate(stacks[day]):
            if not count:
                continue
            h = plot_h * count / top
            y -= h
            label, colour = series[s]
            segments.append(
                Segment(LEFT + i * slot + (slot - bar) / 2, y, bar, h, colour, f"{day}: {label}, {count:,} requests")
            )
    ticks = [(HEIGHT - BOTTOM - plot_h * f, f"{int(top * f):,}") for f in (0, 0.25, 0.5, 0.75, 1)]
    every = max(1, len(days) // 10)
    day_labels = [(LEFT + i * slot + slot / 2, d[5:]) for i, d in enumerate(days) if i % every == 0]
    return Chart(WIDTH, HEIGHT, segments, series, ticks, day_labels, float(HEIGHT - BOTTOM), LEFT)
