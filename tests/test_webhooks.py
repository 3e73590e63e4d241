"""Webhooks: decode_server_notifications and verify_webhook_signature against the plain
SDK's functions, and the aiohttp receiver over loopback with a real HTTP client."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import fishjam
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

import fishjam_fast
from fishjam_fast import events
from fishjam_fast._proto.server_notifications_pb2 import ServerMessage
from fishjam_fast.errors import AgentProtocolError
from fishjam_fast.webhooks import SIGNATURE_HEADER, webhook_app

PEER = ServerMessage(peer_added=ServerMessage.PeerAdded(room_id="r", peer_id="p", peer_type=1))
VAD = ServerMessage(
    vad_notification=ServerMessage.VadNotification(room_id="r", peer_id="p", track_id="t", status=2)
)
TRACK = ServerMessage(
    track_added=ServerMessage.TrackAdded(
        room_id="r", peer_id="p", track={"id": "t", "type": 2, "metadata": "{}"}
    )
)
RECORDING = ServerMessage(
    recording_status_changed=ServerMessage.RecordingStatusChanged(recording_id="x", status=1)
)


def batch(*messages: ServerMessage) -> bytes:
    message = ServerMessage()
    message.notification_batch.notifications.extend(messages)
    return message.SerializeToString()


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


BODIES = {
    "single": PEER.SerializeToString(),
    "track": TRACK.SerializeToString(),
    "recording": RECORDING.SerializeToString(),
    "batch": batch(PEER, TRACK, RECORDING, PEER),
    "empty-batch": batch(),
    "authenticated": ServerMessage(authenticated={}).SerializeToString(),
    "empty": b"",
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_decoding_agrees_with_the_plain_sdk(body: bytes) -> None:
    ours = fishjam_fast.decode_server_notifications(body)
    theirs = fishjam.decode_server_notifications(body)
    assert [type(n).__name__ for n in ours] == [type(n).__name__ for n in theirs]
    for mine, reference in zip(ours, theirs, strict=True):
        for name in type(mine).__match_args__:
            value, expected = getattr(mine, name), getattr(reference, name)
            if name == "track":
                assert (value.id, int(value.type), value.metadata) == (
                    expected.id,
                    int(expected.type),
                    expected.metadata,
                )
            else:
                assert value == expected


def test_voice_activity_and_forwarding_are_kept() -> None:
    """The plain SDK drops them; the JS server SDK and fishjam_fast hand them on."""
    body = batch(VAD, PEER)
    assert fishjam.decode_server_notifications(body) == [
        fishjam.decode_server_notifications(PEER.SerializeToString())[0]
    ]
    vad, peer = fishjam_fast.decode_server_notifications(body)
    assert vad == events.ServerMessageVadNotification(
        "r", "p", "t", events.ServerMessageVadNotificationStatus.STATUS_SPEECH
    )
    assert isinstance(peer, events.ServerMessagePeerAdded)


def test_the_plain_sdk_s_parameter_names() -> None:
    body = PEER.SerializeToString()
    assert fishjam_fast.decode_server_notifications(binary=body) == (
        fishjam_fast.decode_server_notifications(body)
    )
    signature = sign(body, "s")
    assert fishjam_fast.verify_webhook_signature(body=body, signature=signature, secret="s")


def test_malformed_bodies_raise_a_value_error() -> None:
    with pytest.raises(AgentProtocolError, match="malformed ServerMessage"):
        fishjam_fast.decode_server_notifications(b"\xa2\x01\x80")
    assert issubclass(AgentProtocolError, ValueError)


@settings(max_examples=200, deadline=None)
@given(
    body=st.binary(max_size=64),
    secret=st.text(max_size=12),
    other=st.text(alphabet="0123456789abcdef", max_size=64),
    prefix=st.sampled_from(["sha256=", "", " sha256=", "SHA256="]),
)
def test_signatures_as_the_plain_sdk_checks_them(
    body: bytes, secret: str, other: str, prefix: str
) -> None:
    good = sign(body, secret).removeprefix("sha256=")
    for signature in (prefix + good, prefix + other, good + " ", good[:-1]):
        ours = fishjam_fast.verify_webhook_signature(body, signature, secret)
        assert ours == fishjam.verify_webhook_signature(body, signature, secret)
    assert fishjam_fast.verify_webhook_signature(body, "sha256=" + good, secret)
    assert fishjam_fast.verify_webhook_signature(body, good, secret)


# -- the receiver over loopback ---------------------------------------------------------
@pytest.fixture
async def receiver(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, list[Any]]]:
    received: list[Any] = []

    async def slow(notification: Any) -> None:
        received.append(("async", notification))

    secret = getattr(request, "param", None)
    app = webhook_app(
        [lambda n: received.append(("sync", n)), slow],
        secret=secret,
        path="/fishjam",
        max_body_size=1024,
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/fishjam", received
    finally:
        await runner.cleanup()


async def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=body, headers=headers or {}) as response:
            return response.status


@pytest.mark.parametrize("receiver", [None], indirect=True)
async def test_the_receiver_hands_batches_to_every_handler(
    receiver: tuple[str, list[Any]],
) -> None:
    url, received = receiver
    assert await post(url, batch(PEER, VAD), {"Content-Type": "application/x-protobuf"}) == 200
    assert [kind for kind, _ in received] == ["sync", "async", "sync", "async"]
    assert isinstance(received[0][1], events.ServerMessagePeerAdded)
    assert isinstance(received[2][1], events.ServerMessageVadNotification)
    assert await post(url, b"\xa2\x01\x80") == 400
    assert await post(url, b"{}", {"Content-Type": "application/json"}) == 400
    assert await post(url, bytes(2048)) == 413
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 405
    assert len(received) == 4


@pytest.mark.parametrize("receiver", ["webhook-secret"], indirect=True)
async def test_the_receiver_checks_signatures(receiver: tuple[str, list[Any]]) -> None:
    url, received = receiver
    body = PEER.SerializeToString()
    assert await post(url, body) == 401
    assert await post(url, body, {SIGNATURE_HEADER: sign(body, "another secret")}) == 403
    assert await post(url, body + b"\x00", {SIGNATURE_HEADER: sign(body, "webhook-secret")}) == 403
    assert received == []
    assert await post(url, body, {SIGNATURE_HEADER: sign(body, "webhook-secret")}) == 200
    assert len(received) == 2
