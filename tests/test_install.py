"""An installation without extras: pytest still runs, the CLI says what to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fishjam_fast._extras import EXTRAS, missing_modules
from tests.hidden_imports import run_without

EXTRAS_MODULES = ("aiohttp", "fishjam", "matplotlib")  # the local, sdk and demo extras


def test_loading_the_pytest_plugin_imports_no_server() -> None:
    code = "import sys, fishjam_fast.pytest_plugin; print(sorted(m for m in sys.modules "
    code += "if m.startswith(('aiohttp', 'fishjam_fast.local'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result


@pytest.mark.slow  # a pytest run in a subprocess (2.5 s)
def test_pytest_runs_without_the_local_server(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    (tmp_path / "test_trivial.py").write_text("def test_arithmetic():\n    assert 1 + 1 == 2\n")
    (tmp_path / "test_fixture.py").write_text(
        "async def test_needs_the_server(local_fishjam):\n    pass\n"
    )
    result = run_without(
        EXTRAS_MODULES, "pytest", "-p", "no:cacheprovider", str(tmp_path), cwd=tmp_path
    )
    out = result.stdout + result.stderr
    # the plugin was loaded (pytest lists it), the trivial test passed, and the test
    # that asks for the server errored in its set-up, saying which extra to install
    assert "fishjam-fast" in next(x for x in out.splitlines() if x.startswith("plugins:")), out
    assert "1 passed, 1 error" in out, out
    assert "pip install 'fishjam-fast[local]'" in out, out
    assert "Traceback" not in out, out


@pytest.mark.slow  # subprocesses (3 s)
def test_cli_without_extras_says_what_to_install() -> None:
    for command, extra in (("demo", "demo"), ("local", "local")):
        result = run_without(EXTRAS_MODULES, "fishjam_fast", command)
        assert result.returncode == 2, result
        assert f"pip install 'fishjam-fast[{extra}]'" in result.stderr, result
        assert "Traceback" not in result.stdout + result.stderr, result
    for args in (["--help"], ["demo", "--help"]):
        result = run_without(EXTRAS_MODULES, "fishjam_fast", *args)
        assert result.returncode == 2, result  # the help, and: the installation lacks extras
        assert "usage: python -m fishjam_fast" in result.stdout, result
        assert "pip install 'fishjam-fast[demo]'" in result.stdout, result
        assert "Traceback" not in result.stdout + result.stderr, result
    # as this environment is (CI's minimal one has no extras): the help, and status 0
    # only where the extras are installed
    complete = subprocess.run(
        [sys.executable, "-m", "fishjam_fast", "--help"], capture_output=True, text=True
    )
    assert complete.returncode == (0 if _has_extras() else 2), complete
    assert "usage:" in complete.stdout, complete


@pytest.mark.slow  # a subprocess (2 s)
def test_local_server_command_without_its_extra_says_what_to_install() -> None:
    result = run_without(EXTRAS_MODULES, "fishjam_fast.local", "--port", "0")
    assert result.returncode == 2, result
    needs, _, hint = result.stderr.strip().partition(": ")
    assert needs == "python -m fishjam_fast.local needs aiohttp", result
    assert hint == "pip install 'fishjam-fast[local]'", result
    assert "Traceback" not in result.stdout + result.stderr, result
    result = run_without(EXTRAS_MODULES, "fishjam_fast.local", "--help")
    assert result.returncode == 0 and "--port" in result.stdout, result
    assert "Traceback" not in result.stdout + result.stderr, result


def test_the_local_package_imports_aiohttp_only_for_the_server() -> None:
    code = "import sys; from fishjam_fast.local import LocalFishjamProcess, AgentRecord\n"
    code += "print('aiohttp' in sys.modules)\n"
    expected = ["False"]
    if _has_extras():  # the server itself needs the `local` extra
        code += "from fishjam_fast.local import LocalFishjam, ThreadedLocalFishjam\n"
        code += "print('aiohttp' in sys.modules, LocalFishjam.__module__)"
        expected += ["True", "fishjam_fast.local.server"]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == expected, result


def test_star_import_works_without_extras(tmp_path: Path) -> None:
    (tmp_path / "star.py").write_text(
        "from fishjam_fast import *\nprint(sorted(k for k in dir() if not k.startswith('_')))"
    )
    result = run_without(EXTRAS_MODULES, "star", cwd=tmp_path)
    assert result.returncode == 0, result
    assert "'Agent'" in result.stdout and "'AsyncFishjamClient'" in result.stdout, result
    assert "FishjamClient'" not in result.stdout.replace("AsyncFishjamClient'", ""), result


def _has_extras() -> bool:
    """Whether this environment has what the demo and the local server need."""
    return not missing_modules(EXTRAS["demo"][1])


def test_the_pipecat_transport_without_pipecat_says_what_to_install() -> None:
    # runpy imports the package before it looks for a __main__: the import is the test
    result = run_without(("pipecat",), "fishjam_fast.pipecat")
    assert result.returncode == 1, result
    assert result.stderr.strip().splitlines()[-1] == (
        "ImportError: fishjam_fast.pipecat needs pipecat: pip install 'fishjam-fast[pipecat]' "
        "(No module named 'pipecat')"
    ), result
