"""Rows of figures, their ratios, the issue's targets, and the table and JSON they make.

A :class:`Row` is one figure of one case (say "workload 1, astream, chunks/s") for every
implementation that ran it. Ratios are always ``rillet / other`` of the figure itself, so for a
figure where higher is better (chunks/s) a ratio above 1 means rillet wins, and for one where
lower is better (µs per chunk, milliseconds) a ratio below 1 does; the table marks each metric
with ↑ or ↓.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

__all__ = ["COLUMNS", "RATIOS", "Row", "Target", "TARGETS", "check_targets", "format_table",
           "write_json"]

#: The implementations, in column order.
COLUMNS: tuple[str, ...] = ("rillet", "langchain", "raw-naive", "raw-batched")
#: Ratio columns: rillet's figure over each of these.
RATIOS: tuple[str, ...] = ("langchain", "raw-naive", "raw-batched")
_HEADERS = {"rillet": "rillet", "langchain": "langchain", "raw-naive": "raw naive",
            "raw-batched": "raw batched"}


# Copies, so a row cannot change after it is made (typed for mypy's attrs plugin).
def _values(values: Mapping[str, float | None]) -> dict[str, float | None]:
    return dict(values)


def _reps(reps: Mapping[str, int]) -> dict[str, int]:
    return dict(reps)


def _notes(notes: Mapping[str, str]) -> dict[str, str]:
    return dict(notes)


def _extra(extra: Mapping[str, Any]) -> dict[str, Any]:
    return dict(extra)


@attrs.frozen(kw_only=True)
class Row:
    """One figure of one case for each implementation (``None``: not run or did not finish)."""

    workload: int
    case: str
    metric: str
    unit: str
    higher_is_better: bool
    values: Mapping[str, float | None] = attrs.field(factory=dict, converter=_values)
    reps: Mapping[str, int] = attrs.field(factory=dict, converter=_reps)
    notes: Mapping[str, str] = attrs.field(factory=dict, converter=_notes)
    #: Figures for the JSON only (e.g. how many events each implementation reported).
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_extra)
    #: Set by :func:`check_targets`: each target's text and whether it is met (None: unknown).
    verdicts: tuple[tuple[str, bool | None], ...] = ()

    @property
    def key(self) -> tuple[int, str, str]:
        return (self.workload, self.case, self.metric)

    def ratio(self, other: str) -> float | None:
        """``rillet / other`` of this figure, when both exist and make sense to divide."""
        if self.unit == "ratio":
            return None
        mine, theirs = self.values.get("rillet"), self.values.get(other)
        if mine is None or theirs is None or theirs == 0:
            return None
        return mine / theirs

    def as_json(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["ratios"] = {f"rillet/{o}": self.ratio(o) for o in RATIOS if self.ratio(o) is not None}
        return data


@attrs.frozen
class Target:
    """One target of the issue: which row it reads and how it decides."""

    workload: int
    case: str
    metric: str
    text: str
    check: Callable[[Row], bool | None]


def _ratio_at_least(other: str, bound: float) -> Callable[[Row], bool | None]:
    """rillet at least ``bound`` times better than ``other`` (n/a when either is missing)."""
    def check(row: Row) -> bool | None:
        r = row.ratio(other)
        if r is None:
            return None
        return r >= bound if row.higher_is_better else (1 / r) >= bound
    return check


def _ratio_at_most(other: str, bound: float) -> Callable[[Row], bool | None]:
    def check(row: Row) -> bool | None:
        r = row.ratio(other)
        return None if r is None else r <= bound
    return check


def _rillet_at_most(bound: float, *, strict: bool = False) -> Callable[[Row], bool | None]:
    def check(row: Row) -> bool | None:
        v = row.values.get("rillet")
        if v is None:
            return None
        return v < bound if strict else v <= bound
    return check


def _rillet_at_least(bound: float) -> Callable[[Row], bool | None]:
    def check(row: Row) -> bool | None:
        v = row.values.get("rillet")
        return None if v is None else v >= bound
    return check


TARGETS: tuple[Target, ...] = (
    Target(1, "astream", "chunks/s", "≥ 10× langchain", _ratio_at_least("langchain", 10)),
    Target(1, "astream", "chunks/s", "> raw naive", _ratio_at_least("raw-naive", 1.0)),
    Target(2, "10 pass-through steps", "marginal, per chunk per step", "≤ 2 µs",
           _rillet_at_most(2.0)),
    Target(3, "astream_events v2", "events/s", "≥ 10× langchain",
           _ratio_at_least("langchain", 10)),
    Target(4, "1000 concurrent runs", "runs/s", "≥ 20× langchain",
           _ratio_at_least("langchain", 20)),
    Target(4, "1000 concurrent runs", "ttfc p99", "≤ 50 ms", _rillet_at_most(50.0)),
    Target(4, "1000 concurrent runs", "peak RSS per run", "≤ 1/4 of langchain",
           _ratio_at_most("langchain", 0.25)),
    Target(4, "10000 concurrent runs", "runs completed", "all complete",
           lambda row: _rillet_at_least(float(row.extra["expected"]))(row)),
    Target(5, "growth", "exponent", "≤ 1.1", _rillet_at_most(1.1)),
    Target(5, "32000-char document", "seconds", "< 1 s", _rillet_at_most(1.0, strict=True)),
    Target(6, "overhead: nobody subscribes / no runtime", "time ratio", "≤ 1.05",
           _rillet_at_most(1.05)),
    Target(7, "astream from asyncio", "chunks/s", "≥ 10× langchain",
           _ratio_at_least("langchain", 10)),
    Target(7, "astream from asyncio", "cost over native trio, per chunk", "≤ 1.5 µs",
           _rillet_at_most(1.5)),
    Target(7, "astream_events v2 from asyncio", "events/s", "≥ 10× langchain",
           _ratio_at_least("langchain", 10)),
)


def check_targets(rows: Sequence[Row]) -> list[Row]:
    """``rows`` with each target's text and verdict filled in on the row it reads."""
    out = []
    for row in rows:
        verdicts = tuple(
            (t.text, t.check(row)) for t in TARGETS
            if (t.workload, t.case, t.metric) == row.key
        )
        out.append(attrs.evolve(row, verdicts=verdicts) if verdicts else row)
    return out


def fmt(value: float | None, unit: str = "") -> str:
    """A figure with a sensible number of digits: ``123,456``, ``12.3``, ``0.0123``."""
    if value is None:
        return "—"
    if math.isinf(value):
        return "∞"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _ratio_text(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}×" if value < 100 else f"{value:.0f}×"


def _verdict(row: Row) -> str:
    marks = {True: "MET", False: "MISSED", None: "n/a"}
    return "; ".join(f"{marks[met]} {text}" for text, met in row.verdicts)


def table_cells(rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the results table (shared by the terminal and the markdown)."""
    header = ["W", "case", "metric"] + [_HEADERS[c] for c in COLUMNS] + [
        f"rillet/{_HEADERS[c]}" for c in RATIOS] + ["target"]
    cells = []
    for row in rows:
        arrow = "↑" if row.higher_is_better else "↓"
        plain = row.unit in ("", "ratio", row.metric)
        shown = row.metric if plain else f"{row.metric} ({row.unit})"
        metric = f"{shown} {arrow}"
        values = []
        for col in COLUMNS:
            text = fmt(row.values.get(col))
            note = row.notes.get(col)
            if note and col in row.values:
                text = f"{text} [{note}]" if row.values.get(col) is not None else f"[{note}]"
            values.append(text)
        cells.append([str(row.workload), row.case, metric, *values,
                      *(_ratio_text(row.ratio(c)) for c in RATIOS), _verdict(row)])
    return header, cells


def format_table(rows: Sequence[Row]) -> str:
    """A fixed-width text table for the terminal."""
    header, cells = table_cells(rows)
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]

    def line(items: Sequence[str]) -> str:
        return "  ".join(item.ljust(w) for item, w in zip(items, widths)).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    last = None
    for row, item in zip(rows, cells):
        if last is not None and row.workload != last:
            out.append("")
        last = row.workload
        out.append(line(item))
    return "\n".join(out)


def format_markdown(rows: Sequence[Row]) -> str:
    """The results table as GitHub markdown."""
    header, cells = table_cells(rows)
    esc = [[c.replace("|", "\\|") for c in line] for line in cells]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(line) + " |" for line in esc]
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    """What the figures were measured on."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for dist in ("rillet", "trio", "langchain-core", "pydantic"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": versions,
    }


def write_json(path: Path, rows: Sequence[Row], meta: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"meta": dict(meta), "rows": [row.as_json() for row in rows]}
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
