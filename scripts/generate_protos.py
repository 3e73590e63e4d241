"""Regenerates fishjam_fast/_proto/*_pb2.py(i) from protos/ (needs grpcio-tools).

Run from anywhere: ``python scripts/generate_protos.py``. tests/test_protos.py proves
the committed files describe exactly what protos/ says.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def main() -> int:
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    args = ["protoc", f"-I{PROTOS}", f"--python_out={ROOT}", f"--pyi_out={ROOT}", *sources]
    return protoc.main(args)


if __name__ == "__main__":
    sys.exit(main())
