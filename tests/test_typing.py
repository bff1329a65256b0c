"""mypy over ketadash/, as configured in pyproject.toml ([tool.mypy]): strict on the
rules and the writes, checked on the rest. Part of ``python -m pytest``, so CI runs it."""

from __future__ import annotations

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_finds_no_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    report, errors, status = api.run(["--cache-dir", str(tmp_path / "mypy"), "--no-pretty"])
    assert (status, errors) == (0, ""), report
