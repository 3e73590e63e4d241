"""Shared test configuration."""

from __future__ import annotations

import asyncio
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
    uvloop = None


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every async test runs on asyncio and on uvloop (ids ``[asyncio]``/``[uvloop]``).

    A module can narrow this with ``EVENT_LOOPS = ("asyncio",)``.
    """
    factories: dict[str, Callable[[], Any]] = {"asyncio": asyncio.new_event_loop}
    if uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    wanted = getattr(getattr(item, "module", None), "EVENT_LOOPS", None)
    if wanted is not None:
        factories = {name: factories[name] for name in wanted if name in factories}
    return factories


# -- codec: one test body, two implementations (aiohttp's py-parser/c-parser ids) ------
def native_extension() -> ModuleType:
    """``fishjam_fast._ext``; the test is skipped without it, or fails where it is
    expected (``FISHJAM_FAST_EXPECT_NATIVE=1``: scripts/test.sh and CI build it)."""
    try:
        from fishjam_fast import _ext
    except ImportError as exc:
        if os.environ.get("FISHJAM_FAST_EXPECT_NATIVE") == "1":
            pytest.fail(f"the native extension is expected but did not import: {exc}")
        pytest.skip(f"native extension unavailable: {exc}")
    return _ext


def _native_codec() -> SimpleNamespace:
    from fishjam_fast import _messages

    _ext = native_extension()
    messages = compiled(_messages)
    exported = {name: getattr(_ext, name) for name in dir(_ext)}
    exported.update({name: getattr(messages, name) for name in messages.__all__})
    return SimpleNamespace(**exported)


def _fallback_codec() -> SimpleNamespace:
    # the pure-Python build's: the reference codec over the uncompiled message classes
    from fishjam_fast import _codec_py, _messages

    messages = uncompiled(_messages)
    # importable by its name, as the installed module is: pickle finds the classes there
    sys.modules[messages.__name__] = messages
    codec_py = with_messages(_codec_py, messages)
    return SimpleNamespace(**{**vars(codec_py), **vars(messages)})


@pytest.fixture(params=["native", "fallback"], scope="session")
def codec(request: pytest.FixtureRequest) -> SimpleNamespace:
    """The codec functions and message classes of one build: the extension's codec with
    the compiled ``_messages``, or the reference codec with the uncompiled ``_messages``."""
    return _native_codec() if request.param == "native" else _fallback_codec()


# -- transport: the agent tests run on both (pytestmark = usefixtures("transport")) ------
@pytest.fixture(params=["picows", "websockets"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The transport every Agent made in the test uses by default (its name)."""
    name = str(request.param)
    if name == "picows":
        try:
            from fishjam_fast.transport import picows as _transport_picows  # noqa: F401
        except ImportError as exc:
            if os.environ.get("FISHJAM_FAST_EXPECT_NATIVE") == "1":
                pytest.fail(f"picows is expected but did not import: {exc}")
            pytest.skip(f"picows unavailable: {exc}")
    monkeypatch.setenv("FISHJAM_FAST_TRANSPORT", name)
    return name


ALL_TRANSPORTS = pytest.mark.parametrize("transport", ["picows", "websockets"], indirect=True)
"""For transport tests: both transports (kept as a name: the transport tests use it)."""


# -- the session core: compiled (fishjam_fast._core.connection) or its .py uncompiled ---------
@pytest.fixture(params=["native", "python"])
def session_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The build of the session core (``fishjam_fast._core.connection``: the Connection and
    each track's TrackSender) every session here uses: compiled, or its .py run by the
    interpreter (what the pure-Python build runs).

    The uncompiled one is the pure-Python build's, which runs on the websockets transport
    only (the picows transport's per-frame path calls the compiled Connection in C):
    with picows it is skipped.
    """
    from fishjam_fast import agent, session, track
    from fishjam_fast._core import connection

    transport = (
        request.getfixturevalue("transport") if "transport" in request.fixturenames else None
    )
    if request.param == "python" and transport == "picows":
        pytest.skip("the uncompiled session core runs on the websockets transport")
    module = compiled(connection) if request.param == "native" else uncompiled(connection)
    monkeypatch.setattr(agent, "Connection", module.Connection)  # Agent.connect makes it
    monkeypatch.setattr(session, "Connection", module.Connection)
    monkeypatch.setattr(track, "TrackSender", module.TrackSender)
    return str(request.param)


# -- modules compiled from their own .py (Cython's pure-Python mode): both builds --------
def uncompiled(module: ModuleType) -> ModuleType:
    """``module``'s .py source run by the interpreter (what the pure-Python build runs),
    loaded from beside the imported module under another name."""
    name = module.__name__.rpartition(".")[2]
    source = Path(module.__file__ or "").with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"{name}_source", source)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def with_messages(module: ModuleType, messages: ModuleType) -> ModuleType:
    """``module``'s .py source run again (under another name) with ``messages`` as the
    ``fishjam_fast._messages`` it imports: a pure-Python module over the uncompiled
    message classes, where the installed package's import gives the compiled ones."""
    name = module.__name__
    spec = importlib.util.spec_from_file_location(f"{name}_over_messages", module.__file__)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    installed = sys.modules["fishjam_fast._messages"]
    sys.modules["fishjam_fast._messages"] = messages
    try:
        spec.loader.exec_module(loaded)
    finally:
        sys.modules["fishjam_fast._messages"] = installed
    return loaded


def compiled(module: ModuleType) -> ModuleType:
    """``module`` as imported, which must be the compiled build of its .py; the test is
    skipped where it is not, or fails where it is expected (as for native_extension)."""
    if not isinstance(module.__loader__, importlib.machinery.ExtensionFileLoader):
        if os.environ.get("FISHJAM_FAST_EXPECT_NATIVE") == "1":
            pytest.fail(f"{module.__name__} is expected compiled, {module.__file__} loaded")
        pytest.skip(f"{module.__name__} is not compiled in this build")
    return module
