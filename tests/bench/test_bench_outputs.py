"""Smoke and partial benchmark runs never rewrite a file that git tracks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bench.__main__ import default_json_path

ROOT = Path(__file__).resolve().parents[2]


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("git") is None or git("rev-parse").returncode != 0,
                    reason="needs a git checkout to ask which files are tracked")
@pytest.mark.parametrize(("quick", "only"), [(True, None), (False, {1, 3}), (True, {2})])
def test_a_quick_or_partial_run_writes_an_ignored_file(quick: bool, only: set[int] | None) -> None:
    """`python -m bench --quick` (or --only) saves where git ignores it; only a full run
    updates the tracked bench/results/latest.json."""
    path = default_json_path(quick=quick, only=only).relative_to(ROOT)
    assert git("ls-files", "--error-unmatch", str(path)).returncode != 0, f"{path} is tracked"
    assert git("check-ignore", "-q", str(path)).returncode == 0, f"{path} is not ignored"
    assert default_json_path(quick=False, only=None).name == "latest.json"
