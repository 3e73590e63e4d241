"""The package that was installed is the one we meant to build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import fishjam_fast
from fishjam_fast import _codec, _pcm


def test_native_codec_loaded_where_expected() -> None:
    # CI builds with FISHJAM_FAST_REQUIRE_EXTENSION=1 and sets FISHJAM_FAST_EXPECT_NATIVE=1:
    # a silent fallback to pure Python must not pass as "fast" (aiohttp test_c_parser_loaded).
    if os.environ.get("FISHJAM_FAST_EXPECT_NATIVE") == "1":
        assert _codec.NATIVE, "the native extension did not load"
        assert _codec.decode_response.__module__ == "fishjam_fast._ext"
        assert _pcm.NATIVE and _pcm.frame_pcm16.__module__ == "fishjam_fast._ext"
    assert fishjam_fast.NATIVE == _codec.NATIVE


def test_no_extensions_variable_forces_pure_python() -> None:
    code = (
        "import fishjam_fast._codec as c, fishjam_fast._pcm as p; "
        "print(c.NATIVE, c.decode_response.__module__, p.NATIVE, p.frame_pcm16.__module__)"
    )
    env = dict(os.environ, FISHJAM_FAST_NO_EXTENSIONS="1")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "fishjam_fast._codec_py", "False", "fishjam_fast._pcm_py"]


def test_pure_python_package_imports_in_any_order(tmp_path: Path) -> None:
    # a package installed without the extension (failed or skipped compile) must work:
    # copy the installed package minus its compiled module, import each entry point fresh
    package = Path(fishjam_fast.__file__).parent
    shutil.copytree(
        package, tmp_path / "fishjam_fast", ignore=shutil.ignore_patterns("*.so", "*.pyd")
    )
    for module in (
        "fishjam_fast",
        "fishjam_fast.pcm",
        "fishjam_fast._messages_py",
        "fishjam_fast.agent",
    ):
        code = f"import {module}, fishjam_fast; assert not fishjam_fast.NATIVE"
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
        )
        assert result.returncode == 0, f"import {module}: {result.stderr}"
