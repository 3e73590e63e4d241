"""Small valid PNG images for simulated video tracks, made with zlib and struct only."""

from __future__ import annotations

import struct
import zlib


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def make_png(width: int = 32, height: int = 24, seed: int = 0) -> bytes:
    """An 8-bit RGB PNG with a gradient pattern that depends on ``seed``.

    Args:
        width: Pixels per row (1..4096).
        height: Rows (1..4096).
        seed: Varies the colours, so frames of different peers differ.

    Returns:
        The PNG file's bytes (signature, IHDR, IDAT, IEND).

    Raises:
        ValueError: If a dimension is out of range.
    """
    if not (0 < width <= 4096 and 0 < height <= 4096):
        raise ValueError(f"bad PNG size {width}x{height}")
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type None for each scanline
        for x in range(width):
            rows += bytes(
                ((x * 255 // width + seed * 40) & 255, (y * 255 // height) & 255, (seed * 97) & 255)
            )
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(bytes(rows)))
        + _chunk(b"IEND", b"")
    )
