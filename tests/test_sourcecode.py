"""Lint and type checks run as tests (as asyncpg's test__sourcecode), so CI enforces them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata
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
        _ruff(),
        "check",
        "fishjam_fast",
        "tests",
        "benchmarks",
        "fuzzing",
        "scripts",
        "examples",
        "setup.py",
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
        "examples",
        "setup.py",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_layers_import_only_downward() -> None:
    # the contracts in pyproject.toml ([tool.importlinter]): a cycle or an upward import
    # fails here instead of growing
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, f"import-linter is not installed beside {sys.executable}"
    result = _run(lint_imports, "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def _unpinned(constraints: Path) -> list[str]:
    """The packages of ``constraints`` whose installed version is not the pinned one."""
    wrong = []
    for line in constraints.read_text().splitlines():
        name, sep, pinned = line.partition("#")[0].strip().partition("==")
        if not sep:
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != pinned:
            wrong.append(f"{name} {installed} (pinned {pinned})")
    return wrong


def test_mypy_strict() -> None:
    # mypy's verdict depends on the versions of the stubs it reads: it is checked against
    # the pinned development versions only (scripts/test.sh installs them and sets
    # FISHJAM_FAST_DEV_PINS=1, under which a drifted pin fails instead of skipping)
    wrong = _unpinned(ROOT / "constraints-dev.txt")
    if wrong:
        message = f"mypy runs against constraints-dev.txt only; here: {', '.join(wrong)}"
        if os.environ.get("FISHJAM_FAST_DEV_PINS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr
    # the examples are what users copy: as strictly typed as the package (each checked
    # as the script it is, importing examples/_fishjam.py from beside it)
    examples = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").glob("*.py"))
    result = _run(sys.executable, "-m", "mypy", "--strict", *examples)
    assert result.returncode == 0, result.stdout + result.stderr
