"""Hand-rolled protobuf wire encoding for building test frames (valid or not)."""

from __future__ import annotations


def varint(value: int) -> bytes:
    """Base-128 varint of a non-negative value (negative ones: their 64-bit form)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def key(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


def field_len(field: int, payload: bytes) -> bytes:
    return key(field, 2) + varint(len(payload)) + payload


def field_varint(field: int, value: int) -> bytes:
    return key(field, 0) + varint(value)
