"""Regenerates fishjam_fast/_proto/*_pb2.py(i) from protos/ with the pinned generator.

    python scripts/generate_protos.py              # rewrite fishjam_fast/_proto
    python scripts/generate_protos.py --out DIR    # write the generated tree under DIR

The generator is pinned (:data:`GENERATOR`): grpcio-tools 1.65 bundles protoc 26.1,
whose Python code carries no runtime-version check and runs on every protobuf runtime
from 5.26.1 to 7.x, the range ``pyproject.toml`` declares. Newer protoc releases stamp
their own version into the code and refuse older runtimes. grpcio-tools 1.65 itself
needs protobuf < 6, so it cannot share an environment with a protobuf 7 runtime: it
lives in its own virtual environment, ``.venv-protoc`` (built on first use, kept).
tests/test_protos.py regenerates with the same pin and compares byte for byte.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GENERATOR = "grpcio-tools==1.65.5"
GENERATOR_VENV = Path(os.environ.get("FISHJAM_FAST_PROTOC_VENV", ROOT / ".venv-protoc"))


def generator_python(env_dir: Path = GENERATOR_VENV) -> Path:
    """The Python of the generator's virtual environment, built when missing or stale.

    Args:
        env_dir: Where the environment lives.

    Returns:
        The path of its ``python``, with :data:`GENERATOR` installed.

    Raises:
        subprocess.CalledProcessError: pip could not install the generator.
    """
    python = env_dir / "bin" / "python"
    stamp = env_dir / "generator.txt"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == GENERATOR:
        return python
    venv.EnvBuilder(clear=True, with_pip=True).create(env_dir)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", GENERATOR],
        check=True,
    )
    stamp.write_text(GENERATOR + "\n")
    return python


def sources() -> list[str]:
    """The .proto files, relative to protos/ (their package paths)."""
    return sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))


def generate(out: Path) -> None:
    """Writes ``fishjam_fast/_proto/*_pb2.py`` and ``.pyi`` under ``out``.

    Raises:
        subprocess.CalledProcessError: protoc failed (its message is on stderr).
    """
    protoc = [str(generator_python()), "-m", "grpc_tools.protoc", f"-I{PROTOS}"]
    subprocess.run([*protoc, f"--python_out={out}", f"--pyi_out={out}", *sources()], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=ROOT, help="root of the generated tree")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    generate(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
