"""ServerMessage decoding (server notifications, webhook bodies), native and fallback.

References: google.protobuf's parse of the same bytes (independent: generated from
protos/), and the plain SDK's betterproto classes (what its notifier hands out).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import betterproto
import pytest
from fishjam.events._protos.fishjam import ServerMessage as PlainServerMessage
from hypothesis import given, settings
from hypothesis import strategies as st

from fishjam_fast import _notifications_py, events
from fishjam_fast._proto.server_notifications_pb2 import ServerMessage
from fishjam_fast.errors import AgentProtocolError
from tests.conftest import native_extension
from tests.wire import field_len, field_varint, key, varint

Decode = Callable[[bytes], list[Any]]


@pytest.fixture(params=["native", "fallback"], scope="module")
def decode(request: pytest.FixtureRequest) -> Decode:
    if request.param == "native":
        return native_extension().decode_server_message  # type: ignore[no-any-return]
    return _notifications_py.decode_server_message


def plain(value: Any) -> Any:
    """A decoded value as plain data (classes of either side compare alike)."""
    if isinstance(value, list):
        return [plain(item) for item in value]
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    names = getattr(value, "__match_args__", None) or [
        name for name in dir(value) if not name.startswith("_")
    ]
    return (type(value).__name__, {name: plain(getattr(value, name)) for name in names})


# -- generated messages, checked against google.protobuf and betterproto ---------------
MEMBERS = [number for number in events.SCHEMA if number != events.BATCH_FIELD]
texts = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=10)


@st.composite
def members(draw: st.DrawFn, known_enums: bool = False) -> ServerMessage:
    """A ServerMessage with one (non-batch) member, its fields drawn at random."""
    number = draw(st.sampled_from(MEMBERS))
    name = ServerMessage.DESCRIPTOR.fields_by_number[number].name
    message = ServerMessage()
    member = getattr(message, name)
    member.SetInParent()
    for descriptor in member.DESCRIPTOR.fields:
        if not draw(st.booleans()):
            continue
        if descriptor.type == descriptor.TYPE_STRING:
            setattr(member, descriptor.name, draw(texts))
        elif descriptor.type == descriptor.TYPE_ENUM:
            size = len(descriptor.enum_type.values)
            values = st.integers(0, size - 1)
            if not known_enums:
                values = st.one_of(values, st.integers(-(2**31), 2**31 - 1))
            setattr(member, descriptor.name, draw(values))
        else:  # a Track
            track = getattr(member, descriptor.name)
            track.SetInParent()
            track.id = draw(texts)
            track.type = draw(st.integers(0, 2) if known_enums else st.integers(-5, 5))
            track.metadata = draw(texts)
    return message


def expected(message: ServerMessage) -> Any:
    """What decoding ``message`` must give, read off google.protobuf's object."""
    which = message.WhichOneof("content")
    member = getattr(message, which)
    cls, _kinds = events.SCHEMA[message.DESCRIPTOR.fields_by_name[which].number]
    fields: dict[str, Any] = {}
    for descriptor in member.DESCRIPTOR.fields:
        value = getattr(member, descriptor.name)
        if descriptor.type == descriptor.TYPE_MESSAGE:
            if which == "track_forwarding" and not member.HasField(descriptor.name):
                value = None  # optional: None when absent (a plain track field: Track())
            else:
                value = ("Track", {"id": value.id, "type": value.type, "metadata": value.metadata})
        fields[descriptor.name] = value
    return (cls.__name__, fields)


@settings(max_examples=400, deadline=None)
@given(message=members())
def test_members_as_google_protobuf_reads_them(decode: Decode, message: ServerMessage) -> None:
    assert plain(decode(message.SerializeToString())) == [expected(message)]


@settings(max_examples=200, deadline=None)
@given(batch=st.lists(members(), max_size=5))
def test_batches_unpacked_in_order(decode: Decode, batch: list[ServerMessage]) -> None:
    message = ServerMessage()
    message.notification_batch.notifications.extend(batch)
    assert plain(decode(message.SerializeToString())) == [expected(m) for m in batch]


@settings(max_examples=300, deadline=None)
@given(message=members(known_enums=True))
def test_same_fields_as_the_plain_sdk(decode: Decode, message: ServerMessage) -> None:
    data = message.SerializeToString()
    (ours,) = decode(data)
    _which, theirs = betterproto.which_one_of(PlainServerMessage().parse(data), "content")
    assert type(ours).__name__ == type(theirs).__name__
    for name in type(ours).__match_args__:
        mine, reference = getattr(ours, name), getattr(theirs, name)
        if isinstance(reference, betterproto.Enum):
            assert (mine.name, int(mine)) == (reference.name, int(reference))
        elif isinstance(reference, betterproto.Message):
            assert (mine.id, int(mine.type), mine.metadata) == (
                reference.id,
                int(reference.type),
                reference.metadata,
            )
        else:
            assert mine == reference, name


def test_every_member_the_plain_sdk_has_is_here() -> None:
    import fishjam.events

    for name in fishjam.events.__all__:
        assert hasattr(events, name), name
    schema_names = {cls.__name__ for cls, _ in events.SCHEMA.values()}
    for descriptor in ServerMessage.DESCRIPTOR.oneofs_by_name["content"].fields:
        if descriptor.number != events.BATCH_FIELD:
            assert "ServerMessage" + descriptor.message_type.name in schema_names
    for enum in (events.ServerMessagePeerType, events.ServerMessageVadNotificationStatus):
        reference = getattr(fishjam.events._protos.fishjam, enum.__name__)
        assert {m.name: int(m) for m in enum} == {m.name: int(m) for m in reference}


# -- protobuf's rules on hand-made bytes ------------------------------------------------
PEER = field_len(1, b"room") + field_len(2, b"peer") + field_varint(3, 1)
TRACK = field_len(1, b"t1") + field_varint(2, 2) + field_len(3, b"{}")


def test_unknown_fields_of_every_wire_type_are_skipped(decode: Decode) -> None:
    unknown = (
        field_varint(41, 2**64 - 1)
        + key(42, 1)
        + bytes(8)
        + field_len(43, b"xyz")
        + key(2**29 - 1, 5)
        + bytes(4)
    )
    wrong_type = key(1, 0) + varint(5)  # room_id as a varint: unknown, skipped
    frame = field_len(20, unknown + PEER + wrong_type + unknown) + unknown
    (got,) = decode(frame)
    assert got == events.ServerMessagePeerAdded(
        "room", "peer", events.ServerMessagePeerType.PEER_TYPE_WEBRTC
    )


def test_repeated_fields_last_wins_and_tracks_merge(decode: Decode) -> None:
    member = (
        field_len(1, b"r1")
        + field_len(4, field_len(1, b"t1") + field_len(3, b"{}"))
        + field_len(1, b"r2")
        + field_len(4, field_varint(2, 2))  # merged into the same track
    )
    (got,) = decode(field_len(17, member))
    assert plain(got) == plain(
        events.ServerMessageTrackAdded("r2", "", "", events.Track("t1", events.TrackType(2), "{}"))
    )
    assert plain(decode(field_len(17, member))) == plain(
        [_notifications_py.decode_server_message(field_len(17, member))[0]]
    )


def test_the_endpoint_oneof_keeps_the_last_one(decode: Decode) -> None:
    (got,) = decode(field_len(17, field_len(2, b"peer") + field_len(3, b"component")))
    assert (got.peer_id, got.component_id) == ("", "component")
    (got,) = decode(field_len(17, field_len(3, b"component") + field_len(2, b"peer")))
    assert (got.peer_id, got.component_id) == ("peer", "")


def test_another_member_replaces_the_earlier_one(decode: Decode) -> None:
    (got,) = decode(field_len(20, PEER) + field_len(10, field_len(1, b"room2")))
    assert got == events.ServerMessageRoomCreated("room2")
    (got,) = decode(field_len(20, PEER) + field_len(20, field_len(2, b"other")))
    assert got.peer_id == "other" and got.room_id == "room"  # the same member: merged


def test_unknown_members_and_empty_messages(decode: Decode) -> None:
    assert decode(b"") == [events.UnknownNotification(0)]
    assert decode(field_len(40, PEER)) == [events.UnknownNotification(40)]
    assert decode(field_len(12, b"")) == [events.UnknownNotification(12)]  # no member 12
    assert decode(field_varint(20, 1)) == [events.UnknownNotification(20)]  # wrong wire type


def test_nested_batches_are_unknown_and_empty_batches_empty(decode: Decode) -> None:
    peer = field_len(20, PEER)
    nested = field_len(33, field_len(1, peer))
    frame = field_len(33, field_len(1, peer) + field_len(1, nested) + field_len(1, b""))
    got = decode(frame)
    assert [type(n).__name__ for n in got] == [
        "ServerMessagePeerAdded",
        "UnknownNotification",
        "UnknownNotification",
    ]
    assert got[1:] == [events.UnknownNotification(33), events.UnknownNotification(0)]
    assert decode(field_len(33, b"")) == []


def test_any_buffer(decode: Decode) -> None:
    frame = field_len(10, field_len(1, b"room"))
    for data in (frame, bytearray(frame), memoryview(frame), memoryview(frame * 2)[::2][:0]):
        if len(data):
            assert decode(data) == [events.ServerMessageRoomCreated("room")]
    with pytest.raises(TypeError, match="bytes-like"):
        decode("text")  # type: ignore[arg-type]


# -- malformed input --------------------------------------------------------------------
OVERLONG = b"\x80" * 10 + b"\x00"
MALFORMED = {
    "truncated-key": b"\x80",
    "truncated-length": b"\xa2\x01\x80",
    "length-past-end": field_len(20, PEER)[:-1],
    "length-2**31": b"\xa2\x01" + varint(2**31),
    "length-2**63": b"\xa2\x01" + varint(2**63),
    "length-2**64-1": b"\xa2\x01" + varint(2**64 - 1),
    "nested-huge-length": field_len(20, b"\x0a" + varint(2**62)),
    "track-past-member": field_len(17, b"\x22\x05ab"),
    "batch-item-past-batch": field_len(33, b"\x0a\x09" + PEER[:3]),
    "overlong-key": OVERLONG,
    "truncated-enum": field_len(20, b"\x18\xff"),
    "truncated-i64": field_len(20, key(9, 1) + bytes(7)),
    "truncated-i32": key(50, 5) + bytes(3),
    "invalid-utf8": field_len(10, field_len(1, b"\xff\xfe")),
    "invalid-utf8-in-track": field_len(17, field_len(4, field_len(1, b"\xc3"))),
    "field-number-0": b"\x02\x00",
}


@pytest.mark.parametrize("frame", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_frames_raise_agent_protocol_error(decode: Decode, frame: bytes) -> None:
    with pytest.raises(AgentProtocolError, match="malformed ServerMessage"):
        decode(frame)


def _deep_batches(depth: int) -> bytes:
    frame = field_len(20, PEER)
    for _ in range(depth):
        frame = field_len(33, field_len(1, frame))
    return frame


STRICTER = {
    "group": key(9, 3) + key(9, 4),
    "overflowing-varint": field_len(20, b"\x18" + b"\xff" * 9 + b"\x02"),
    "deep-batches": _deep_batches(20),
}


@pytest.mark.parametrize("frame", STRICTER.values(), ids=STRICTER.keys())
def test_native_is_stricter_than_upb(frame: bytes) -> None:
    """Where upb is lax (groups, bits past 64, deep nesting) the native decoder refuses,
    naming the offset; the fallback is google.protobuf and accepts."""
    native = native_extension()
    with pytest.raises(AgentProtocolError, match=r"malformed ServerMessage: .* at offset \d+"):
        native.decode_server_message(frame)
    _notifications_py.decode_server_message(frame)


def test_errors_name_the_offset() -> None:
    native = native_extension()
    expected = "length 2147483648 exceeds the 0 bytes left at offset 2"
    with pytest.raises(AgentProtocolError, match=expected):
        native.decode_server_message(b"\xa2\x01" + varint(2**31))


def test_every_truncation_agrees() -> None:
    """Every prefix of a batch: both sides accept it (and agree) or both refuse it."""
    native = native_extension()
    batch = ServerMessage()
    for item in (
        ServerMessage(track_added=ServerMessage.TrackAdded(room_id="r", peer_id="p")),
        ServerMessage(vad_notification=ServerMessage.VadNotification(track_id="t", status=2)),
    ):
        batch.notification_batch.notifications.append(item)
    batch.notification_batch.notifications[0].track_added.track.id = "track"
    data = batch.SerializeToString()
    for end in range(len(data) + 1):
        outcomes = []
        for function in (native.decode_server_message, _notifications_py.decode_server_message):
            try:
                outcomes.append(plain(function(data[:end])))
            except AgentProtocolError:
                outcomes.append("error")
        assert outcomes[0] == outcomes[1], end
