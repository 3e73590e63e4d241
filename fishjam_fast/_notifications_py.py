"""The ServerMessage decoder, pure-Python flavour: google.protobuf (already a
dependency, generated from ``protos/``) parses, and fishjam_fast.events.SCHEMA maps its
messages onto the same classes the native decoder (``src_ext/notifications.pyx``)
builds. ``fishjam_fast._codec`` picks one of the two.

Where the two differ: the native decoder is stricter on malformed input (groups, varints
with bits past 64, batches nested more than 16 deep are refused; upb accepts them), and
its error messages name the byte offset.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import TYPE_CHECKING, Any

from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet

from ._messages import Track
from .enums import track_type
from .errors import AgentProtocolError

if TYPE_CHECKING:
    from google.protobuf.message import Message
    from typing_extensions import Buffer

__all__ = ["decode_server_message"]


def decode_server_message(frame: Buffer) -> list[Any]:
    """Decodes one ``ServerMessage`` (see the native ``decode_server_message``).

    Raises:
        AgentProtocolError: ``frame`` is not a valid ServerMessage.
        TypeError: ``frame`` is not a buffer.
    """
    try:
        data = bytes(memoryview(frame))
    except TypeError:
        raise TypeError(f"frame must be a bytes-like object, not {type(frame).__name__}") from None
    try:
        message = _server_message().FromString(data)
    except DecodeError as exc:
        raise AgentProtocolError(f"malformed ServerMessage: {exc}") from None
    result = _content(message, 0)
    return result if type(result) is list else [result]


@functools.cache
def _server_message() -> Any:
    # imported on first use: importing google.protobuf's generated module is slow
    from ._proto.server_notifications_pb2 import ServerMessage

    return ServerMessage


@functools.cache
def _events() -> ModuleType:
    from . import events  # on first use, as the extension's decoder does

    return events


def _content(message: Message, depth: int) -> Any:
    events = _events()
    which = message.WhichOneof("content")
    if which is None:
        unknown = UnknownFieldSet(message)
        return events.UnknownNotification(
            unknown[len(unknown) - 1].field_number if len(unknown) else 0
        )
    member = getattr(message, which)
    number = message.DESCRIPTOR.fields_by_name[which].number
    if number == events.BATCH_FIELD:
        if depth:
            return events.UnknownNotification(number)
        return [_content(item, depth + 1) for item in member.notifications]
    cls, kinds = events.SCHEMA[number]
    values = []
    for descriptor, kind in zip(member.DESCRIPTOR.fields, kinds, strict=True):
        value = getattr(member, descriptor.name)
        if type(kind) is tuple:
            value = kind[value] if 0 <= value < len(kind) else value
        elif kind == events.K_TRACK or kind == events.K_OPT_TRACK:
            if kind == events.K_OPT_TRACK and not member.HasField(descriptor.name):
                value = None
            else:
                value = Track(value.id, track_type(value.type), value.metadata)
        values.append(value)
    return cls(*values)
