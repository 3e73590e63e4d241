"""wss://: normal certificate verification, and a custom ``ssl`` context that trusts a
self-signed certificate made here."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fishjam_fast import Agent, AgentConnectionError, OutgoingAudioTrackOptions
from fishjam_fast.local import LocalFishjam

pytestmark = pytest.mark.usefixtures("transport")


TIMEOUT = 5.0


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fishjam-fast test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
async def tls_fishjam(certificate: tuple[Path, Path]) -> AsyncIterator[LocalFishjam]:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(*certificate)
    async with LocalFishjam(ssl=server_context) as fj:
        yield fj


async def test_custom_ssl_context_connects(
    tls_fishjam: LocalFishjam, certificate: tuple[Path, Path]
) -> None:
    fj = tls_fishjam
    assert fj.url.startswith("https://")
    room = await fj.create_room()
    peer = await fj.add_agent(room)
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    agent = Agent(peer.id, room, peer.token, fj.url, ssl=trusting)
    assert agent._socket_url.startswith("wss://")
    async with agent.connect() as session:
        assert session._transport.get_extra_info("ssl_object") is not None
        track = await session.add_track(OutgoingAudioTrackOptions())
        await track.send_chunk(b"\1\2" * 320)
        rec = await fj.wait_track(peer.id, 0, TIMEOUT)
        await fj.wait_bytes(rec, 640, TIMEOUT)
        await fj.add_speaking_peer(room, realtime=False, chunks=1)
        message = await asyncio.wait_for(anext(session.receive()), TIMEOUT)
        assert len(message.data) == 640
    assert rec.chunks == [b"\1\2" * 320]


async def test_default_verification_refuses_a_self_signed_certificate(
    tls_fishjam: LocalFishjam,
) -> None:
    fj = tls_fishjam
    room = await fj.create_room()
    peer = await fj.add_agent(room)
    agent = Agent(peer.id, room, peer.token, fj.url)
    with pytest.raises(AgentConnectionError, match="CERTIFICATE_VERIFY_FAILED") as info:
        async with agent.connect():
            pass
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    # nothing reached the agent socket: the handshake failed first
    assert not any(c.authenticated for c in fj.connections)
