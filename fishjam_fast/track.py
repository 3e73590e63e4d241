"""An agent's outgoing audio track: audio in, ``track_data`` frames out."""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from . import _codec, _pcm, pcm
from ._options import TrackParams, track_params
from .errors import AgentError

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from .session import AgentSession


class OutgoingTrack:
    """An outgoing audio track of an agent, created by :meth:`AgentSession.add_track`.

    Attributes:
        id: The global identifier of the track (a fresh ``uuid4().hex``).
        session: The session the track belongs to.
        options: The options the track was created with.
    """

    __slots__ = (
        "_encoder",
        "_frame_bytes",
        "_params",
        "_removed",
        "_send",
        "id",
        "options",
        "session",
    )

    def __init__(
        self, id: str, session: AgentSession, options: Any, *, params: TrackParams | None = None
    ) -> None:
        """Made by :meth:`AgentSession.add_track`, which validated ``options`` into
        ``params`` (validated here when not given)."""
        if params is None:
            params = track_params(options)
        self.id = id
        self.session = session
        self.options = options
        self._params = params
        # the session's one way out: frames go through it, closed or not
        self._send = session._send
        self._encoder = _codec.TrackDataEncoder(id)
        # PCM16 chunks must hold whole sample frames; Opus packets are opaque
        self._frame_bytes = params.frame_bytes if params.is_pcm16 else 1
        self._removed = False

    def __repr__(self) -> str:
        return f"OutgoingTrack(id={self.id!r}, options={self.options!r})"

    @property
    def removed(self) -> bool:
        """True once the track was removed with :meth:`remove`."""
        return self._removed

    def _check_not_removed(self) -> None:
        if self._removed:
            raise AgentError(f"track {self.id} was removed; add a new track to send audio")

    async def send_chunk(self, data: Buffer) -> None:
        """Sends a chunk of audio on this track.

        Peers in the agent's room hear it once the server plays it. Waits while the
        connection's write buffer is full (flow control), so a fast producer cannot
        grow memory without bound.

        Args:
            data: Raw audio: a bytes-like object (bytes, bytearray, memoryview or a
                contiguous buffer). For PCM16 tracks its length must be a multiple
                of ``2 * channels`` bytes. PCM16 tracks also take NumPy arrays,
                converted and framed in one native pass (see :mod:`fishjam_fast.pcm`):
                int16 (either byte order), or float32/float64 in [-1, 1]; shape
                ``(n,)`` (mono, or interleaved) or ``(n, channels)``; any strides.

        Raises:
            TypeError: ``data`` is neither bytes-like nor an accepted NumPy array.
            ValueError: ``data`` does not hold whole PCM16 sample frames, or its
                shape does not match the track's channels.
            AgentError: the track was removed.
            AgentConnectionError: the session is closed, or the connection was lost.
        """
        self._check_not_removed()
        if isinstance(data, np.ndarray):
            await self._send(self._frame_array(data))
            return
        frame_bytes = self._frame_bytes
        if frame_bytes != 1:
            size = _payload_size(data)
            if size % frame_bytes:
                layout = "mono" if frame_bytes == 2 else "stereo"
                raise ValueError(
                    f"a PCM16 {layout} chunk must be a multiple of {frame_bytes} bytes "
                    f"(whole 16-bit samples for every channel), got {size} bytes"
                )
        await self._send(self._encoder.encode(data))

    def _frame_array(self, samples: npt.NDArray[Any]) -> memoryview:
        """One track_data frame holding all of ``samples`` as PCM16."""
        params = self._params
        if not params.is_pcm16:
            raise TypeError(
                "NumPy arrays are PCM samples, for PCM16 tracks only; send Opus packets as bytes"
            )
        prepared, _ = pcm._prepare(samples, params.channels)
        per_chunk = max(1, prepared.size // params.channels)
        buffer, offsets = _pcm.frame_pcm16(self.id, prepared, params.channels, per_chunk)
        if len(offsets) == 1:  # no samples: an empty chunk, as b"" would send
            return memoryview(self._encoder.encode(b""))
        return buffer.data

    async def send_pcm(self, samples: Buffer | npt.NDArray[Any], chunk_ms: int = 20) -> int:
        """Sends a long stretch of audio as chunks of ``chunk_ms`` each.

        Converts and frames every chunk in one native pass into one buffer, then hands
        the frames to the transport in as few writes as it allows (flow control as
        :meth:`send_chunk`). A short last chunk is sent as it is: no padding, no
        truncation. The server plays the chunks in real time from its queue.

        Args:
            samples: PCM16 bytes, or a NumPy array as :meth:`send_chunk` takes.
            chunk_ms: Milliseconds of audio per chunk; at the track's sample rate it
                must be a whole number of samples.

        Returns:
            The number of chunks sent.

        Raises:
            TypeError, ValueError: as :meth:`send_chunk`, or a bad ``chunk_ms``.
            AgentError: the track was removed.
            AgentConnectionError: the session is closed, or the connection was lost.
        """
        self._check_not_removed()
        params = self._params
        if not params.is_pcm16:
            raise TypeError("send_pcm is for PCM16 tracks; send Opus packets with send_chunk")
        buffer, offsets = pcm.frame_pcm(
            self.id, samples, params.sample_rate, params.channels, chunk_ms
        )
        view = buffer.data
        frames = [view[start:end] for start, end in pairwise(offsets.tolist())]
        await self._send(frames)
        return len(frames)

    async def interrupt(self) -> None:
        """Interrupts the track.

        Audio sent but not yet played is dropped by the server; audio sent after the
        interrupt plays normally.

        Raises:
            AgentError: the track was removed.
            AgentConnectionError: the session is closed, or the connection was lost.
        """
        self._check_not_removed()
        await self._send(_codec.encode_interrupt_track(self.id))

    async def remove(self) -> None:
        """Removes the track from the room (``RemoveTrack``; the plain SDK lacks it).

        Sending on the track afterwards raises :class:`AgentError`; removing it again
        does nothing.

        Raises:
            AgentConnectionError: the session is closed, or the connection was lost.
        """
        if self._removed:
            return
        await self._send(_codec.encode_remove_track(self.id))
        self._removed = True


def _payload_size(data: object) -> int:
    if isinstance(data, bytes | bytearray):
        return len(data)
    try:
        return memoryview(data).nbytes  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            "audio data must be a bytes-like object (bytes, bytearray, memoryview), "
            f"not {type(data).__name__}"
        ) from None
