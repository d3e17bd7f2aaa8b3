"""The lint and type-check configuration itself: `make test` runs ruff and mypy before the tests, and mypy holds
every module to account: only the generated protobuf code is exempt."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_exempts_only_the_generated_code():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    exempt = [o["module"] for o in config.get("overrides", []) if o.get("ignore_errors")]
    assert exempt == [["scalediffusion.v1.*"]], f"modules mypy does not check: {exempt}"


def test_ruff_and_mypy_run_in_make_test():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ntest: install\n", 1)[1].split("\n\n", 1)[0]
    assert "ruff check ." in recipe and "mypy" in recipe
