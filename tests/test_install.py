"""An installation without extras: pytest still runs, the CLI says what to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.hidden_imports import run_without

EXTRAS_MODULES = ("aiohttp", "fishjam", "matplotlib")  # the local, sdk and demo extras


def test_loading_the_pytest_plugin_imports_no_server() -> None:
    code = "import sys, fishjam_fast.pytest_plugin; print(sorted(m for m in sys.modules "
    code += "if m.startswith(('aiohttp', 'fishjam_fast.local'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result


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


def test_cli_without_extras_says_what_to_install() -> None:
    for command, extra in (("demo", "demo"), ("local", "local")):
        result = run_without(EXTRAS_MODULES, "fishjam_fast", command)
        assert result.returncode == 2, result
        assert f"pip install 'fishjam-fast[{extra}]'" in result.stderr, result
        assert "Traceback" not in result.stdout + result.stderr, result
    for args in (["--help"], ["demo", "--help"]):
        result = run_without(EXTRAS_MODULES, "fishjam_fast", *args)
        assert result.returncode == 0, result
        assert "pip install 'fishjam-fast[demo]'" in result.stdout, result
        assert "Traceback" not in result.stdout + result.stderr, result


def test_chart_without_matplotlib_says_what_to_install(tmp_path: Path) -> None:
    chart = tmp_path / "chart.png"
    result = run_without(("matplotlib",), "fishjam_fast", "demo", "--chart", str(chart))
    assert result.returncode == 2, result
    needs, _, hint = result.stderr.strip().partition(": ")
    assert "matplotlib" in needs and hint == "pip install 'fishjam-fast[demo]'", result
    assert not chart.exists()
