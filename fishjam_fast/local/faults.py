"""Fault injection: what a test does to an agent's connection that a real network or a
real server failure would (closes, TCP drops, stalls, malformed frames, floods).

:class:`FaultInjection` is a part of :class:`~fishjam_fast.local.LocalFishjam`; its
methods act on live agent connections found through the server's
:class:`~fishjam_fast.local.state.ServerState`. A server restart (which keeps the state)
is part of the server's lifecycle: :meth:`LocalFishjam.restart`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fishjam_fast._proto import agent_pb2, notifications_pb2

if TYPE_CHECKING:
    from .agent_socket import AgentConnection, AgentSockets
    from .state import ServerState


class FaultInjection:
    """Fault injection methods of :class:`LocalFishjam` (call them on its event loop)."""

    state: ServerState
    sockets: AgentSockets

    def _live(self, peer_id: str) -> AgentConnection:
        conn = self.state.connection(peer_id)
        if conn is None:
            raise KeyError(f"agent {peer_id} is not connected")
        return conn

    async def close_agent(
        self, peer_id: str, code: int = 1011, reason: str = "internal error"
    ) -> None:
        """Close an agent's socket with ``code`` and ``reason``; the peer stays (it may
        reconnect).

        Raises:
            KeyError: If the agent is not connected.
        """
        await self._live(peer_id).close(code, reason)

    def drop_agent(self, peer_id: str) -> None:
        """Drop an agent's TCP connection without a close frame (the client sees 1006).

        The agent counts as disconnected at once: it may reconnect with its token
        immediately.

        Raises:
            KeyError: If the agent is not connected.
        """
        self._live(peer_id).drop()

    def drop_all_agents(self) -> int:
        """Drop every agent socket (authenticated or still authenticating) without a
        close frame, as a load balancer reset does; peers and tokens stay.

        Returns:
            How many sockets were dropped.
        """
        return self.sockets.drop_all()

    def stall_agent(self, peer_id: str, seconds: float) -> None:
        """Stop reading from an agent's socket for ``seconds``: once the buffers fill,
        the agent's sends block (TCP backpressure).

        Raises:
            KeyError: If the agent is not connected.
        """
        self._live(peer_id).stall(seconds)

    async def send_raw(self, peer_id: str, data: bytes) -> None:
        """Send ``data`` as one binary frame, as is (e.g. a malformed AgentResponse).

        Raises:
            KeyError: If the agent is not connected.
        """
        await self._live(peer_id).send(data)

    async def flood_agent(
        self,
        peer_id: str,
        count: int,
        *,
        chunk_bytes: int | None = None,
        peer_from: str = "flood",
        track_id: str = "flood-track",
    ) -> int:
        """Send ``count`` track_data chunks to an agent as fast as its socket drains.

        Args:
            peer_id: The agent.
            count: How many chunks.
            chunk_bytes: Payload size (default: 20 ms at the agent's output rate).
            peer_from: ``peer_id`` the chunks claim to come from.
            track_id: Their track id.

        Returns:
            How many were sent (fewer if the socket closed).

        Raises:
            KeyError: If the agent is not connected.
        """
        conn = self._live(peer_id)
        size = chunk_bytes if chunk_bytes is not None else conn.peer.output_sample_rate // 50 * 2
        frame = agent_pb2.AgentResponse(
            track_data=agent_pb2.AgentResponse.TrackData(
                peer_id=peer_from,
                track=notifications_pb2.Track(
                    id=track_id, type=notifications_pb2.TRACK_TYPE_AUDIO, metadata="null"
                ),
                data=bytes(size),
            )
        ).SerializeToString()
        sent = 0
        for _ in range(count):
            if not await conn.send(frame):
                break
            sent += 1
        conn.record.track_data_sent += sent
        return sent
