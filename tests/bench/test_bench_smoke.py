"""The benchmark suite runs every workload and produces well-formed rows (no timing asserted).

LangChain is optional (CI installs only the ``test`` extra): without it the LangChain columns
must be empty and say "not installed"; with it they must hold figures.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import attrs
import pytest

from bench import asyncio_host, concurrency, events, json_parsing, no_subscriber, steps, streaming
from bench.__main__ import main
from bench.chains import have_langchain
from bench.harness import Config, Deadline, Impl, growth_exponent, percentile, run_alternating
from bench.report import COLUMNS, Row, check_targets, format_markdown, format_table

TINY = Config(
    quick=True, reps=1, tokens=200, step_chunks=200, steps=3, events_tokens=100,
    concurrent=(10, 20), concurrent_tokens=10, concurrent_reps=(1,), json_sizes=(300, 600),
    json_peer_cap=600, time_box=20.0, peer_budget=5.0, rss_sizes=(10,), overhead_reps=1,
    concurrent_time_box=20.0,
)
WORKLOADS = [streaming, steps, events, concurrency, json_parsing, no_subscriber, asyncio_host]
LANGCHAIN = have_langchain()


def _check_rows(module: ModuleType, rows: list[Row], *, langchain: bool) -> None:
    assert rows, f"workload {module.NUMBER} produced no rows"
    for row in rows:
        assert isinstance(row, Row)
        assert row.workload == module.NUMBER
        assert row.case and row.metric
        assert set(row.values) <= set(COLUMNS), row.values
        # Shapes only: a figure's size and sign are the machine's business, not the test's
        # (a growth exponent or a marginal cost fitted on tiny inputs can come out negative).
        for value in row.values.values():
            assert value is None or (isinstance(value, float | int) and math.isfinite(value)), row
        json.dumps(row.as_json())
    parser_missing = module is json_parsing and json_parsing.rillet_parser() is None
    if parser_missing:
        assert all("not available" in row.notes.get("rillet", "") for row in rows)
    else:
        assert rows[0].values.get("rillet") is not None, rows[0]
    lc_values = [row.values.get("langchain") for row in rows]
    if langchain:
        assert any(v is not None for v in lc_values), "no LangChain figure at all"
    else:
        assert all(v is None for v in lc_values)
        assert all(row.notes.get("langchain") == "not installed" for row in rows
                   if "langchain" in row.values)


@pytest.mark.parametrize("module", WORKLOADS, ids=lambda m: f"workload-{m.NUMBER}")
def test_workload_produces_well_formed_rows(module: ModuleType) -> None:
    """Each workload, tiny, yields rows of finite figures for rillet and the raw limit."""
    rows = check_targets(module.run(TINY))
    _check_rows(module, rows, langchain=LANGCHAIN)
    assert format_table(rows).count("\n") >= len(rows)
    assert format_markdown(rows).startswith("| W |")


def test_suite_runs_without_langchain(monkeypatch: pytest.MonkeyPatch) -> None:
    """With langchain-core absent, the LangChain columns are empty and say so."""
    for module in WORKLOADS:
        monkeypatch.setattr(module, "have_langchain", lambda: False)
    for module in (streaming, no_subscriber):
        _check_rows(module, module.run(TINY), langchain=False)


def test_command_line_writes_json(tmp_path: Path) -> None:
    """``python -m bench --quick --only 2`` prints the table and saves rows as JSON."""
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    assert main(["--quick", "--only", "2", "--reps", "1", "--json", str(out),
                 "--markdown", str(md)]) == 0
    doc = json.loads(out.read_text())
    assert doc["meta"]["config"]["quick"] is True
    assert [row["workload"] for row in doc["rows"]] == [2, 2]
    assert {"values", "ratios", "verdicts", "notes"} <= set(doc["rows"][0])
    assert md.read_text().startswith("| W |")


def test_time_box_and_failures_are_reported_not_raised() -> None:
    """A repetition that overruns its box stops repeating; a failing one is noted."""
    def slow(deadline: Deadline) -> dict[str, float]:
        return {"dnf": 1, "seconds": 1.0}

    def broken(deadline: Deadline) -> dict[str, float]:
        raise RuntimeError("boom")

    def fine(deadline: Deadline) -> dict[str, float]:
        return {"seconds": 0.5}

    got = run_alternating([Impl("a", slow), Impl("b", broken), Impl("c", fine)],
                          attrs.evolve(TINY, reps=3))
    assert len(got["a"].reps) == 1 and got["a"].note() == "did not finish in 20 s"
    assert got["b"].reps == () and got["b"].note() == "failed: RuntimeError: boom"
    assert len(got["c"].reps) == 3 and got["c"].median("seconds") == 0.5


def test_targets_and_helpers() -> None:
    """Ratios are rillet / other; targets read the row they name."""
    row = Row(workload=1, case="astream", metric="chunks/s", unit="chunks/s",
              higher_is_better=True, values={"rillet": 100.0, "langchain": 5.0,
                                             "raw-naive": 50.0})
    (checked,) = check_targets([row])
    assert checked.ratio("langchain") == 20.0
    assert [met for _, met in checked.verdicts] == [True, True]
    assert round(growth_exponent([1, 2, 4], [1.0, 4.0, 16.0]) or 0, 6) == 2.0
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0
    assert percentile([float(i) for i in range(100)], 99) == 98.0
