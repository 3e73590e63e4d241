"""The committed generated classes are exactly what the pinned generator makes of protos/.

scripts/generate_protos.py pins the generator (protoc 26.1, whose code runs on every
protobuf runtime the package accepts) and keeps it in its own virtual environment; this
test regenerates with that pin and compares the files byte for byte, so both a changed
.proto and code from another protoc fail here.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "fishjam_fast" / "_proto"
SCRIPT = ROOT / "scripts" / "generate_protos.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_protos", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # installs and runs the pinned protoc (20 s)
def test_committed_code_is_the_pinned_generators_output(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    generated = {p.name: p.read_bytes() for p in (tmp_path / "fishjam_fast" / "_proto").iterdir()}
    committed = {p.name: p.read_bytes() for p in COMMITTED.glob("*_pb2.py*")}
    assert sorted(generated) == sorted(committed)
    stale = [name for name in generated if generated[name] != committed[name]]
    assert not stale, f"{stale} differ: run scripts/generate_protos.py"


def test_generator_is_pinned_to_a_protoc_every_supported_runtime_accepts() -> None:
    # protoc 26.1 is the newest whose code has no runtime-version check (27+ stamp one)
    assert _script().GENERATOR == "grpcio-tools==1.65.5"
    for path in COMMITTED.glob("*_pb2.py"):
        text = path.read_text()
        assert "# Protobuf Python Version: 5.26.1" in text, path
        assert "ValidateProtobufRuntimeVersion" not in text, path
