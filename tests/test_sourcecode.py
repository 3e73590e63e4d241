"""Lint and type checks run as tests (as asyncpg's test__sourcecode), so CI enforces them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def _ruff() -> str:
    # ruff is in the test extra: missing, it is a broken environment, not a skip
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    assert ruff, f"ruff is not installed beside {sys.executable}: pip install '.[test]'"
    return ruff


def test_ruff_check() -> None:
    result = _run(
        _ruff(), "check", "fishjam_fast", "tests", "benchmarks", "fuzzing", "scripts", "setup.py"
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = _run(
        _ruff(),
        "format",
        "--check",
        "fishjam_fast",
        "tests",
        "benchmarks",
        "fuzzing",
        "scripts",
        "setup.py",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    pytest.importorskip("mypy")
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr
