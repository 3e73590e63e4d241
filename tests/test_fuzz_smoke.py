"""The fuzz harness's test_one_input over deterministic random inputs (no atheris)."""

from __future__ import annotations

import importlib.util
import os
import random
from pathlib import Path
from types import ModuleType

import pytest

from tests.wire import field_len, field_varint

HARNESS = Path(__file__).resolve().parent.parent / "fuzzing" / "fuzz_decode.py"


def _harness() -> ModuleType:
    try:
        import fishjam_fast._ext  # noqa: F401
    except ImportError as exc:
        if os.environ.get("FISHJAM_FAST_EXPECT_NATIVE") == "1":
            pytest.fail(f"the native extension is expected but did not import: {exc}")
        pytest.skip("the harness cross-checks the native codec, which is unavailable")
    spec = importlib.util.spec_from_file_location("fuzz_decode", HARNESS)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# valid frames to mutate, so the decoder gets past the first bytes often
TRACK = field_len(1, b"t") + field_varint(2, 2) + field_len(3, b"{}")
SEEDS = [
    field_len(2, field_len(1, b"peer") + field_len(2, TRACK) + field_len(3, b"\x01\x02")),
    field_len(3, field_len(1, b"t") + field_len(2, b"image/jpeg") + field_len(3, b"jpg")),
    field_len(1, b""),
]

PEER = field_len(1, b"room") + field_len(2, b"peer") + field_varint(3, 1)
NOTIFICATION_SEEDS = [
    field_len(20, PEER),
    field_len(17, field_len(1, b"r") + field_len(2, b"p") + field_len(4, TRACK)),
    field_len(33, field_len(1, field_len(20, PEER)) + field_len(1, field_len(32, PEER))),
    field_len(30, PEER + field_len(5, TRACK)),
]


def test_fuzz_harness_smoke() -> None:
    harness = _harness()
    rng = random.Random(20261121)
    for i in range(6000):
        if i % 3 == 0:
            notification = rng.random() < 0.5
            seed = bytearray(rng.choice(NOTIFICATION_SEEDS if notification else SEEDS))
            for _ in range(rng.randint(1, 3)):
                seed[rng.randrange(len(seed))] = rng.randrange(256)
            data = (b"\x03" if notification else b"\x01") + bytes(seed[: rng.randint(0, len(seed))])
        else:
            data = rng.randbytes(rng.randint(0, 80))
        harness.test_one_input(data)
    # the seeds themselves decode
    assert all(type(harness.native.decode_response(s)).__name__ != "UnknownResponse" for s in SEEDS)
    for seed in NOTIFICATION_SEEDS:
        decoded = harness.native.decode_server_message(seed)
        assert decoded and "Unknown" not in repr(decoded)
