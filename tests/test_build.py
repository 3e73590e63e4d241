"""The package that was installed is the one we meant to build."""

from __future__ import annotations

import os
import subprocess
import sys

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
