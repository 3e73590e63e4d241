"""Shared fixtures."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest


# -- codec: one test body, two implementations (aiohttp's py-parser/c-parser ids) ------
def _native_codec() -> SimpleNamespace:
    try:
        from fishjam_fast import _ext
    except ImportError as exc:
        if os.environ.get("FISHJAM_FAST_EXPECT_NATIVE") == "1":
            pytest.fail(f"the native extension is expected but did not import: {exc}")
        pytest.skip(f"native extension unavailable: {exc}")
    return SimpleNamespace(**{name: getattr(_ext, name) for name in dir(_ext)})


def _fallback_codec() -> SimpleNamespace:
    from fishjam_fast import _codec_py, _messages_py

    return SimpleNamespace(**{**vars(_codec_py), **vars(_messages_py)})


@pytest.fixture(params=["native", "fallback"], scope="session")
def codec(request: pytest.FixtureRequest) -> SimpleNamespace:
    """The codec functions and message classes of one implementation."""
    return _native_codec() if request.param == "native" else _fallback_codec()
