"""The committed generated classes describe exactly what protos/ says."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from fishjam_fast._proto import agent_pb2, notifications_pb2

PROTOS = Path(__file__).resolve().parent.parent / "protos"


def _without_json_names(
    file: descriptor_pb2.FileDescriptorProto,
) -> descriptor_pb2.FileDescriptorProto:
    # protoc fills json_name in descriptor sets but leaves it out of generated code
    def strip(message: descriptor_pb2.DescriptorProto) -> None:
        for f in message.field:
            f.ClearField("json_name")
        for nested in message.nested_type:
            strip(nested)

    for message in file.message_type:
        strip(message)
    return file


def test_generated_descriptors_match_protos() -> None:
    protoc = pytest.importorskip("grpc_tools.protoc")
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        assert protoc.main(["protoc", f"-I{PROTOS}", f"--descriptor_set_out={out}", *sources]) == 0
        fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    from_protos = {f.name: f for f in fds.file}
    for module in (agent_pb2, notifications_pb2):
        committed = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
        assert committed == _without_json_names(from_protos[committed.name]), (
            f"{module.__name__} is stale: run scripts/generate_protos.py"
        )
    assert len(from_protos) == 2
