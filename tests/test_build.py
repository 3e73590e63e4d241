"""The package that was installed is the one we meant to build."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import fishjam_fast
from fishjam_fast import (
    _codec,
    _codec_py,
    _messages,
    _native,
    _notifications_py,
    _pcm,
    _pcm_py,
)
from tests.conftest import compiled, native_extension, uncompiled


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


def _defined(*modules: ModuleType) -> set[str]:
    """The public classes and functions the modules define (not those they import)."""
    return {
        name
        for module in modules
        for name, value in vars(module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__
    }


def test_extension_defines_exactly_the_selected_names() -> None:
    ext = native_extension()
    assert _defined(ext) == set(_codec.NAMES)
    assert ext.NATIVE is True


def test_fallback_defines_exactly_the_selected_names() -> None:
    fallback = (_codec_py, _pcm_py, _notifications_py)
    assert _defined(*fallback) == set(_codec.NAMES)


def test_message_classes_come_from_one_source_in_both_builds() -> None:
    # not selected: _codec re-exports _messages' classes (compiled where _ext is), which
    # define exactly MESSAGE_NAMES compiled and uncompiled; _ext does not define them
    names = set(_native.MESSAGE_NAMES)
    assert set(_messages.__all__) == names == _defined(uncompiled(_messages))
    assert not names & set(_codec.NAMES)
    for name in names:
        assert getattr(_codec, name) is getattr(_messages, name)
    if os.environ.get("FISHJAM_FAST_EXPECT_NATIVE") == "1":
        assert _defined(compiled(_messages)) == names
        assert not names & set(dir(native_extension()))


def test_extension_stub_declares_exactly_the_selected_names() -> None:
    stub = ast.parse(Path(_codec.__file__).with_name("_ext.pyi").read_text())
    declared = set()
    for node in stub.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            declared.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            declared.add(node.target.id)
    assert {name for name in declared if not name.startswith("_")} == {"NATIVE", *_codec.NAMES}


def test_selector_and_pcm_view_agree() -> None:
    assert _pcm.NATIVE is _codec.NATIVE
    for name in ("frame_pcm16", "pcm16_bytes", "pcm16_into", "pcm16_to_float32"):
        assert getattr(_pcm, name) is getattr(_codec, name)


def _package_without_extension(tmp_path: Path) -> Path:
    """A copy of the installed package minus its compiled module (a failed or skipped
    compile); import it with ``cwd`` set to the returned folder."""
    package = Path(fishjam_fast.__file__).parent
    shutil.copytree(
        package, tmp_path / "fishjam_fast", ignore=shutil.ignore_patterns("*.so", "*.pyd")
    )
    return tmp_path


_RECORD_IMPORT_WARNINGS = """
import json, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import fishjam_fast
print(json.dumps([[w.category.__name__, str(w.message)] for w in caught]))
"""


def _import_warnings(cwd: Path, **env: str) -> list[list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", _RECORD_IMPORT_WARNINGS],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    warnings: list[list[str]] = json.loads(result.stdout)
    return warnings


def test_missing_extension_warns_at_import(tmp_path: Path) -> None:
    assert issubclass(fishjam_fast.NativeExtensionWarning, RuntimeWarning)
    caught = _import_warnings(_package_without_extension(tmp_path), FISHJAM_FAST_NO_EXTENSIONS="")
    assert [category for category, _ in caught] == ["NativeExtensionWarning"]
    message = caught[0][1]
    assert "performance is degraded" in message
    assert "C compiler" in message and "FISHJAM_FAST_REQUIRE_EXTENSION=1" in message
    assert "FISHJAM_FAST_NO_EXTENSIONS=1" in message
    # Python's own words for the missing module blame a circular import: not repeated
    assert "circular" not in message and "no compiled fishjam_fast._ext in" in message


REPOSITORY = Path(__file__).resolve().parents[1]


def test_a_script_in_the_source_checkout_is_told_to_build_in_place(tmp_path: Path) -> None:
    # a script run from the repository root imports the source tree, where nothing was
    # compiled: the warning says so, with the command that fixes it, instead of
    # Python's "partially initialized module ... circular import"
    root = (tmp_path / "checkout").resolve()
    ignore = shutil.ignore_patterns("*.so", "*.pyd", "__pycache__")
    shutil.copytree(REPOSITORY / "fishjam_fast", root / "fishjam_fast", ignore=ignore)
    shutil.copytree(REPOSITORY / "src_ext", root / "src_ext", ignore=ignore)
    (root / "bot.py").write_text(_RECORD_IMPORT_WARNINGS + "print(fishjam_fast.__file__)\n")
    result = subprocess.run(
        [sys.executable, "bot.py"],
        cwd=root,
        env={**os.environ, "FISHJAM_FAST_NO_EXTENSIONS": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    caught_json, imported = result.stdout.splitlines()
    assert Path(imported).parent == root / "fishjam_fast"  # the source tree, not site-packages
    caught = json.loads(caught_json)
    assert [category for category, _ in caught] == ["NativeExtensionWarning"]
    message = caught[0][1]
    assert "circular" not in message
    assert f"imported from its source checkout ({root / 'fishjam_fast'})" in message
    assert f"cd {root} && python setup.py build_ext --inplace" in message
    assert "run the script from another directory" in message


def test_extension_switched_off_on_purpose_does_not_warn(tmp_path: Path) -> None:
    cwd = _package_without_extension(tmp_path)
    assert _import_warnings(cwd, FISHJAM_FAST_NO_EXTENSIONS="1") == []


def test_installed_extension_does_not_warn(tmp_path: Path) -> None:
    native_extension()
    assert _import_warnings(tmp_path, FISHJAM_FAST_NO_EXTENSIONS="") == []


def test_pure_python_package_imports_in_any_order(tmp_path: Path) -> None:
    # a package installed without the extension (failed or skipped compile) must work:
    # import each entry point fresh from a copy of the package minus its compiled module
    _package_without_extension(tmp_path)
    for module in (
        "fishjam_fast",
        "fishjam_fast.pcm",
        "fishjam_fast._messages",
        "fishjam_fast.agent",
    ):
        code = f"import {module}, fishjam_fast; assert not fishjam_fast.NATIVE"
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
        )
        assert result.returncode == 0, f"import {module}: {result.stderr}"


_PURE_PYTHON_TRANSPORT = """
import warnings
warnings.simplefilter("ignore")
from fishjam_fast import Agent
agent = Agent("agent", "room", "token", "http://127.0.0.1:1")
print(agent.transport_name)
try:
    Agent("agent", "room", "token", "http://127.0.0.1:1", transport="picows")
except ImportError as exc:
    print(str(exc))
else:
    print("no error")
"""


def _pure_python_build(tmp_path: Path, how: str) -> tuple[Path, dict[str, str]]:
    """Where and with which environment a script runs the pure-Python build: "not-built"
    (a copy of the package without the extension) or "switched-off"
    (``FISHJAM_FAST_NO_EXTENSIONS=1``); the default transport left to the build."""
    if how == "not-built":
        cwd, switch = _package_without_extension(tmp_path), ""
    else:
        cwd, switch = tmp_path, "1"
    env = {k: v for k, v in os.environ.items() if k != "FISHJAM_FAST_TRANSPORT"}
    return cwd, {**env, "FISHJAM_FAST_NO_EXTENSIONS": switch}


@pytest.mark.parametrize("how", ["not-built", "switched-off"])
def test_pure_python_build_uses_the_websockets_transport(tmp_path: Path, how: str) -> None:
    """The picows transport's per-frame path is compiled (no Python twin): without the
    extension the default is websockets, and asking for picows says what to do."""
    cwd, env = _pure_python_build(tmp_path, how)
    result = subprocess.run(
        [sys.executable, "-c", _PURE_PYTHON_TRANSPORT],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    default, refusal = result.stdout.strip().split("\n")
    assert default == "websockets"
    assert "the picows transport runs on fishjam_fast's compiled extension" in refusal
    assert "use transport='websockets'" in refusal


def test_native_build_defaults_to_picows(monkeypatch: pytest.MonkeyPatch) -> None:
    native_extension()
    from fishjam_fast.transport.choose import default_transport

    monkeypatch.delenv("FISHJAM_FAST_TRANSPORT", raising=False)
    assert default_transport() == "picows"


_PURE_PYTHON_SESSION = """
import asyncio, json
import fishjam_fast
from fishjam_fast import Agent, OutgoingAudioTrackOptions
from fishjam_fast._core import connection
from fishjam_fast.local import LocalFishjam

async def main():
    async with LocalFishjam() as fj:
        room = await fj.create_room()
        peer = await fj.add_agent(room)
        agent = Agent(peer.id, room, peer.token, fj.url)
        async with agent.connect() as session:
            track = await session.add_track(OutgoingAudioTrackOptions())
            await track.send_chunk(b"\\x01\\x00" * 320)
            track.send_chunk_nowait(b"\\x02\\x00" * 320)
            await track.send_pcm(b"\\x03\\x00" * 640)
            record = fj.agent(agent.id)
            await fj.wait_for(
                lambda: sum(r.HasField("track_data") for r in record.requests) == 4, 5.0
            )
            data = [r.track_data.data[:2].hex() for r in record.requests
                    if r.HasField("track_data")]
            print(json.dumps({
                "native": fishjam_fast.NATIVE,
                "compiled": not connection.__file__.endswith(".py"),
                "transport": agent.transport_name,
                "sent": session.stats.messages_sent,
                "data": data,
            }))

asyncio.run(main())
"""


@pytest.mark.parametrize("how", ["not-built", "switched-off"])
def test_pure_python_build_runs_a_session(tmp_path: Path, how: str) -> None:
    """Without the extension (not built: the session core's .py runs uncompiled) and with
    it switched off (the compiled session core with the pure-Python codec), a session
    sends what the native build sends."""
    pytest.importorskip("fishjam_fast.local.server")  # (the script runs the local Fishjam)
    cwd, env = _pure_python_build(tmp_path, how)
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _PURE_PYTHON_SESSION],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["native"] is False
    assert report["transport"] == "websockets"
    # the authentication, add_track, then four track_data frames (send_pcm's 40 ms: two
    # 20 ms chunks)
    assert report["sent"] == 6
    assert report["data"] == ["0100", "0200", "0300", "0300"]
    if how == "not-built":
        assert report["compiled"] is False
    elif os.environ.get("FISHJAM_FAST_EXPECT_NATIVE") == "1":
        assert report["compiled"] is True
