"""``python -m fishjam_fast.local`` in a subprocess, and the signal/image helpers."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from fishjam_fast.local import AudioSource, make_png
from fishjam_fast.local.signals import chirp, noise, resample, speech, tone


def test_cli_prints_url_and_token_and_serves() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fishjam_fast.local", "--port", "0", "--seconds", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()
        token = proc.stdout.readline().split()
        assert url[0] == "URL" and url[1].startswith("http://127.0.0.1:")
        assert token[0] == "MANAGEMENT_TOKEN"
        req = urllib.request.Request(
            url[1] + "/room",
            method="POST",
            data=b"{}",
            headers={"Authorization": f"Bearer {token[1]}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 201
            assert json.load(resp)["data"]["room"]["config"]["roomType"] == "conference"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # reaps it and closes both pipes


def test_cli_seconds_bound() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fishjam_fast.local", "--port", "0", "--seconds", "0.2"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    assert out.stdout.startswith("URL http://127.0.0.1:")


def test_cli_port_in_use_is_one_line_and_status_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "fishjam_fast.local", "--port", str(port), "--seconds", "5"],
            capture_output=True,
            text=True,
            timeout=20,
            cwd=tmp_path,  # the installed package: -m puts the working directory first
        )
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.splitlines() == [
        f"python -m fishjam_fast.local: port {port} on 127.0.0.1 is in use (another local "
        "Fishjam?): stop what holds it, or choose another port with --port N (--port 0: "
        "any free port)"
    ]


def test_png_is_valid() -> None:
    png = make_png(5, 3, seed=2)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, kinds = 8, []
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc
        kinds.append(kind)
        if kind == b"IDAT":
            assert len(zlib.decompress(body)) == 3 * (1 + 5 * 3)
        pos += 12 + length
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]


def test_signals() -> None:
    assert len(tone(440, 0.5, 16000)) == 8000 and tone(440, 0.1, 24000).dtype == np.int16
    assert len(chirp(100, 1000, 0.2, 24000)) == 4800
    assert np.array_equal(noise(0.1, 16000, seed=3), noise(0.1, 16000, seed=3))
    assert len(resample(tone(440, 1.0, 16000), 16000, 24000)) == 24000
    spoken = speech("hello world", 16000)
    assert spoken.dtype == np.int16 and len(spoken) > 1600 and np.abs(spoken).max() > 1000
    src = AudioSource.from_array(np.arange(160, dtype=np.int16), 16000)
    assert len(src.render(24000)) == 240 and not src.render(16000).flags.writeable


def test_threaded_server_with_sync_client() -> None:
    from fishjam import FishjamClient

    from fishjam_fast.local import ThreadedLocalFishjam

    with ThreadedLocalFishjam() as t:
        client = FishjamClient(t.url, t.management_token)
        room = client.create_room()
        agent = client.create_agent(room.id)
        assert t.call(lambda: t.server.peer(agent.id).type) == "agent"
        speaker = t.call(t.server.add_speaking_peer, room.id, realtime=False, chunks=3)
        t.call(speaker.wait_done, 5.0)
        assert [p.status.value for p in client.get_room(room.id).peers] == [
            "disconnected",
            "connected",
        ]
    assert not t.server.running
