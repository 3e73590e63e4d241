"""FishjamTransport: a pipecat transport on a fishjam_fast agent.

Modelled on pipecat's LiveKit transport: one input processor pushing each peer's audio
as ``UserAudioRawFrame(user_id=peer_id)``, one output processor writing the pipeline's
audio onto an :class:`~fishjam_fast.OutgoingTrack` paced by its playout clock
(``max_queued``), an interruption dropping what Fishjam holds (``track.interrupt()``),
and participant events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    StartFrame,
    UserAudioRawFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.utils.utils import obj_id
from pydantic import Field, field_validator, model_validator

from .. import _codec, events
from ..agent import Agent
from ..errors import AgentConnectionError, AgentWouldBlockError
from ..notifier import FishjamNotifier, NotificationIterator
from ..pcm import Resampler
from ..session import AgentSession
from ..track import OutgoingTrack
from ..windows import AudioWindows, TrackAudio
from ._connection import FishjamConnection
from ._frames import FrameAssembler, FrameMixer, resample_pcm16

logger = logging.getLogger("fishjam_fast")

FISHJAM_RATES = (16000, 24000)
DEFAULT_IN_WINDOW_MS = 40
_WEBRTC = events.ServerMessagePeerType.PEER_TYPE_WEBRTC


class FishjamParams(TransportParams):
    """``TransportParams`` (audio in and out enabled by default) plus Fishjam's own.

    Parameters:
        audio_in_user_tracks: Each person's audio as its own stream of
            ``UserAudioRawFrame(user_id=peer_id)`` (the default; a pipeline with one
            STT and VAD then hears them all, interleaved). False: the people's audio
            mixed into one stream of ``InputAudioRawFrame``.
        agent_sample_rate: The rate Fishjam sends this agent peers' audio at: the
            ``audio_sample_rate`` the agent was created with (16000 or 24000). It is
            resampled to the pipeline's input rate when they differ.
        audio_in_frame_ms: Milliseconds of audio per input frame pushed into the
            pipeline (Fishjam's chunks are 20 ms).
        audio_in_window_ms: Milliseconds of peers' audio taken from the session at
            once (``session.on_audio``'s window), a whole number of input frames:
            40 (two 20 ms frames) reads the socket and runs the callback half as often
            as per chunk, for at most 20 ms more latency on a window's first frame
            (Silero's VAD analyses 32 ms at a time anyway). None: 40 ms, or one frame
            when frames are longer. Each window's frames are pushed together.
        audio_in_max_queued_secs: Input audio waiting to be handed to pipecat at most
            (received while the event loop was busy elsewhere); older frames are
            dropped beyond it (counted, logged). The pipeline's own queues, after
            that, are pipecat's (unbounded).
        audio_out_track_sample_rate: The outgoing track's rate (16000 or 24000). None:
            the pipeline's output rate when Fishjam takes it, else 24000 (resampled).
        audio_out_max_queued_secs: The track's ``max_queued``: audio queued at Fishjam
            at most; writes wait beyond it, and an interruption drops at most this.
        audio_out_playout_timeout_secs: At the end (``EndFrame``), how long to wait
            for the queued audio (the end silence included) to play before closing.
    """

    audio_in_enabled: bool = True
    audio_out_enabled: bool = True
    audio_in_user_tracks: bool = True
    agent_sample_rate: int = 16000
    audio_in_frame_ms: int = Field(default=20, ge=10, le=1000)
    audio_in_window_ms: int | None = Field(default=None, ge=10, le=2000)
    audio_in_max_queued_secs: float = Field(default=2.0, gt=0)
    audio_out_track_sample_rate: int | None = None
    audio_out_max_queued_secs: float = Field(default=0.5, gt=0)
    audio_out_playout_timeout_secs: float = Field(default=5.0, ge=0)

    @field_validator("agent_sample_rate", "audio_out_track_sample_rate")
    @classmethod
    def _check_fishjam_rate(cls, rate: int | None) -> int | None:
        if rate is not None and rate not in FISHJAM_RATES:
            raise ValueError(f"Fishjam's PCM16 audio is 16000 or 24000 Hz, not {rate}")
        return rate

    @model_validator(mode="after")
    def _check_window(self) -> FishjamParams:
        window, frame = self.audio_in_window_ms, self.audio_in_frame_ms
        if window is not None and window % frame:
            raise ValueError(
                f"audio_in_window_ms must be a whole number of input frames "
                f"(audio_in_frame_ms={frame}), got {window}"
            )
        return self

    @property
    def in_window_ms(self) -> int:
        """The input's window: ``audio_in_window_ms``, or its default (see above)."""
        if self.audio_in_window_ms is not None:
            return self.audio_in_window_ms
        frame = self.audio_in_frame_ms
        return frame * max(1, DEFAULT_IN_WINDOW_MS // frame)

    @field_validator("audio_in_channels")
    @classmethod
    def _check_in_channels(cls, channels: int) -> int:
        if channels != 1:
            raise ValueError(
                f"Fishjam delivers peers' audio in mono: audio_in_channels=1, not {channels}"
            )
        return channels

    @field_validator("audio_out_channels")
    @classmethod
    def _check_out_channels(cls, channels: int) -> int:
        if channels not in (1, 2):
            raise ValueError(f"audio_out_channels must be 1 or 2, not {channels}")
        return channels


class FishjamInputTransport(BaseInputTransport):
    """Pushes each peer's audio into the pipeline as ``UserAudioRawFrame(user_id=peer_id)``
    (or, with ``audio_in_user_tracks=False``, everyone's mixed as ``InputAudioRawFrame``).

    Audio reaches it in windows of whole input frames (``session.on_audio``,
    ``audio_in_window_ms``, 40 ms: two 20 ms frames): one callback per window for every
    peer in the room, the socket read about once per window, each peer's samples copied
    once natively; :class:`FrameAssembler` cuts each window into frames and resamples
    per peer where the rates differ. The frames wait in a bounded deque for one
    pump task that hands them to pipecat's input queue in order, participant events
    among them. The pure-Python build (no windows) takes the session's per-chunk
    ``on_track_data`` callback instead, through the same assembler.
    """

    def __init__(
        self, transport: FishjamTransport, connection: FishjamConnection, params: FishjamParams
    ) -> None:
        super().__init__(params, name=transport._input_name)
        self._transport = transport
        self._connection = connection
        self._assembler: FrameAssembler | None = None
        self._windows: AudioWindows | None = None
        # frames and events for the pipeline, oldest first; the frames are bounded by
        # audio_in_max_queued_secs (_on_track_data drops the oldest beyond it)
        self._pending: deque[InputAudioRawFrame | tuple[str, str]] = deque()
        self._mixer = None if params.audio_in_user_tracks else FrameMixer()
        self._max_pending = 1
        self._wakeup = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._ready = False
        self.frames_dropped = 0
        """Input frames dropped because the pump fell ``audio_in_max_queued_secs``
        behind."""

    @property
    def audio_windows(self) -> AudioWindows | None:
        """The session's audio windows this input takes (their counters: ``windows``,
        ``overflow_frames``, ...), or None before the start, after the end, and in the
        pure-Python build (per chunk there)."""
        return self._windows

    async def setup(self, setup: FrameProcessorSetup) -> None:
        """Sets up pipecat's side, then connects (the input rate is known now)."""
        await super().setup(setup)
        params: FishjamParams = self._params
        self._assembler = FrameAssembler(
            params.agent_sample_rate, self.sample_rate, params.audio_in_frame_ms
        )
        self._max_pending = max(
            1, int(params.audio_in_max_queued_secs * 1000 / params.audio_in_frame_ms)
        )
        await self._transport._open("input")

    async def start(self, frame: StartFrame) -> None:
        """Starts the pump, then takes audio from the session."""
        await super().start(frame)
        await self.set_transport_ready(frame)
        self._ready = True
        if self._pump is None:
            self._pump = self.create_task(self._run_pump())
        if self._params.audio_in_enabled and self._windows is None:
            self._take_audio()

    async def stop(self, frame: EndFrame) -> None:
        """Stops taking audio and lets go of the connection."""
        await super().stop(frame)
        await self._teardown()

    async def cancel(self, frame: CancelFrame) -> None:
        """As :meth:`stop`, at once."""
        await super().cancel(frame)
        await self._teardown()

    async def cleanup(self) -> None:
        """Releases everything (idempotent)."""
        await super().cleanup()
        await self._teardown()

    def _take_audio(self) -> None:
        """Asks the session for peers' audio: in windows, or per chunk without them."""
        params: FishjamParams = self._params
        if not _codec.NATIVE:  # the pure-Python build has no windows
            self._connection.on_track_data(self._on_track_data)
            return
        self._windows = self._connection.on_audio(
            self._on_window, params.in_window_ms, params.agent_sample_rate
        )

    async def _teardown(self) -> None:
        self._ready = False
        if self._windows is not None:
            self._windows.stop()
            self._windows = None
        else:
            self._connection.on_track_data(None)
        if self._pump is not None:
            await self.cancel_task(self._pump)
            self._pump = None
        self._pending.clear()
        await self._transport._close("input")

    def forget_peer(self, peer_id: str) -> None:
        """Drops a peer's partial frame and resampler (it left)."""
        if self._assembler is not None:
            self._assembler.forget(peer_id)
        if self._mixer is not None:
            self._mixer.forget(peer_id)

    def queue_event(self, name: str, peer_id: str) -> None:
        """Queues a participant event, in order with the audio around it."""
        self._pending.append((name, peer_id))
        self._wakeup.set()

    def _on_window(self, window: list[TrackAudio]) -> None:
        """The session's callback, once per window: must not block."""
        if not self._ready:
            return
        for track in window:
            # pcm is a view of the session's ring, valid during this call: one copy out
            # (a zero-padded tail where the peer stopped keeps the stream's timing)
            self._add(track.peer_id, track.pcm.tobytes())

    def _on_track_data(self, message: Any) -> None:
        """The session's callback, once per chunk (the pure-Python build): must not block."""
        if self._ready:
            self._add(message.peer_id, message.data)

    def _add(self, peer_id: str, data: Any) -> None:
        """Cuts (and resamples) one peer's audio into frames and queues them."""
        assembler = self._assembler
        if assembler is None:
            return
        if self._transport._heard(peer_id):
            self._pending.append(("joined", peer_id))
            self._wakeup.set()
        frames = assembler.push(peer_id, data)
        if not frames:
            return
        rate = self.sample_rate
        pending = self._pending
        if self._mixer is None:
            for audio in frames:
                pending.append(
                    UserAudioRawFrame(
                        user_id=peer_id, audio=audio, sample_rate=rate, num_channels=1
                    )
                )
        else:
            for audio in self._mixer.add(peer_id, frames):
                pending.append(InputAudioRawFrame(audio=audio, sample_rate=rate, num_channels=1))
        dropped = 0
        while len(pending) > self._max_pending and isinstance(pending[0], InputAudioRawFrame):
            pending.popleft()
            dropped += 1
        if dropped:
            if (
                self.frames_dropped == 0
                or self.frames_dropped // 500 != (self.frames_dropped + dropped) // 500
            ):
                logger.warning(
                    "pipecat: the pipeline is %.1f s behind the room's audio; dropped %d "
                    "input frames so far",
                    self._params.audio_in_max_queued_secs,
                    self.frames_dropped + dropped,
                )
            self.frames_dropped += dropped
        self._wakeup.set()

    async def _run_pump(self) -> None:
        """Hands what the callback queued to pipecat, in order."""
        pending = self._pending
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while pending:
                item = pending.popleft()
                if isinstance(item, tuple):
                    await self._transport._participant_event(*item)
                else:
                    await self.push_audio_frame(item)


class FishjamOutputTransport(BaseOutputTransport):
    """Writes the pipeline's audio onto the agent's outgoing track.

    Writes are paced by the track's playout clock: a write returns at once while less
    than ``audio_out_max_queued_secs`` is queued at Fishjam, else waits for room. An
    ``InterruptionFrame`` drops what pipecat queued (its base class), cancels a write
    waiting for room, skips chunks cut before it, and sends ``track.interrupt()`` so
    Fishjam drops what it holds.
    """

    def __init__(
        self, transport: FishjamTransport, connection: FishjamConnection, params: FishjamParams
    ) -> None:
        super().__init__(params, name=transport._output_name)
        self._transport = transport
        self._connection = connection
        self._track: OutgoingTrack | None = None
        self._resampler: Resampler | None = None
        # chunks made before the last interruption have a lower frame id (pipecat ids
        # grow globally): one that was taken off the queue as it was cleared is skipped
        self._cut_id = -1
        self._waiting: asyncio.Future[None] | None = None
        self.interruptions = 0
        """Interruptions handled."""
        self.seconds_dropped = 0.0
        """Seconds of queued audio Fishjam dropped on interruptions (the track's model)."""

    @property
    def track(self) -> OutgoingTrack | None:
        """The outgoing track, once set up."""
        return self._track

    async def setup(self, setup: FrameProcessorSetup) -> None:
        """Connects and adds the track at a Fishjam rate (the output rate is known now)."""
        await super().setup(setup)
        params: FishjamParams = self._params
        rate = self.sample_rate
        track_rate = params.audio_out_track_sample_rate
        if track_rate is None:
            track_rate = rate if rate in FISHJAM_RATES else 24000
        channels = params.audio_out_channels
        if track_rate != rate:
            self._resampler = Resampler(rate, track_rate, channels)
        await self._transport._open("output")
        self._track = await self._connection.add_track(
            track_rate, channels, params.audio_out_max_queued_secs
        )

    async def start(self, frame: StartFrame) -> None:
        """Starts pipecat's media sender."""
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def stop(self, frame: EndFrame) -> None:
        """Plays out (end silence included, bounded), then lets go of the connection."""
        await super().stop(frame)
        track = self._track
        timeout = self._params.audio_out_playout_timeout_secs
        session = self._connection.session
        if track is not None and not track.removed and session is not None and not session.closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await track.wait_for_playout()
        await self._transport._close("output")

    async def cancel(self, frame: CancelFrame) -> None:
        """Lets go at once."""
        await super().cancel(frame)
        await self._transport._close("output")

    async def cleanup(self) -> None:
        """Releases everything (idempotent)."""
        await super().cleanup()
        await self._transport._close("output")

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """pipecat's processing, plus the interruption at Fishjam."""
        if isinstance(frame, InterruptionFrame):
            self._cut_id = obj_id()
            if self._waiting is not None:
                self._waiting.cancel()  # a write waiting for room: it sends nothing
        await super().process_frame(frame, direction)
        if isinstance(frame, InterruptionFrame):
            await self._interrupt()

    async def _interrupt(self) -> None:
        if self._resampler is not None:
            self._resampler.reset()
        track = self._track
        if track is None or track.removed:
            return
        try:
            dropped = await track.interrupt()
        except AgentConnectionError as error:  # closed: nothing is queued there any more
            logger.debug("pipecat: interrupt on a closed session: %s", error)
            return
        self.interruptions += 1
        self.seconds_dropped += dropped
        logger.debug("pipecat: interrupted track %s, dropped %.3f s", track.id, dropped)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        """Sends one chunk of the pipeline's audio on the track.

        Returns:
            False for a chunk cut by an interruption (not sent), True once sent.

        Raises:
            AgentConnectionError: the connection was lost while sending (a closed
                session returns False instead: pipecat would log every chunk).
        """
        track = self._track
        if track is None or (frame.interruptible and frame.id < self._cut_id):
            return False
        data: bytes = frame.audio
        if self._resampler is not None:
            data = resample_pcm16(self._resampler, data)
            if not data:
                return True
        try:  # room under max_queued and in the write buffer: no task, no wait
            track.send_chunk_nowait(data)
            return True
        except AgentWouldBlockError:
            pass
        except AgentConnectionError:  # reconnecting: send_chunk waits for the new socket
            pass
        waiting = self._waiting = asyncio.ensure_future(track.send_chunk(data))
        try:
            await waiting
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            return False  # cancelled by an interruption: nothing was sent
        except AgentConnectionError:
            session = self._connection.session
            if session is None or session.closed:  # ended (on_disconnected said so)
                return False
            raise
        finally:
            self._waiting = None
        return True


def _nothing() -> None:
    pass


class FishjamTransport(BaseTransport):
    """A pipecat transport on Fishjam, through a fishjam_fast agent.

    ``input()`` pushes every peer's audio as ``UserAudioRawFrame(user_id=peer_id)`` at
    the pipeline's input rate; ``output()`` plays the pipeline's audio on one outgoing
    track of the agent. Given an :class:`~fishjam_fast.Agent`, the transport connects
    it when the pipeline starts and disconnects it when the pipeline ends; given an
    open :class:`~fishjam_fast.AgentSession`, it uses it and leaves it open.

    Events (``@transport.event_handler("on_...")``), each called with the transport:
    ``on_connected`` / ``on_disconnected`` (the agent's session; ``on_disconnected``
    also when Fishjam ends it: the agent's peer or room was removed, or reconnecting
    failed; end the pipeline there), and with a
    participant's peer id: ``on_first_participant_joined`` (once),
    ``on_participant_joined`` and ``on_client_connected`` (each person),
    ``on_participant_left`` and ``on_client_disconnected``. With a ``notifier``
    (:class:`~fishjam_fast.FishjamNotifier`), people are known from Fishjam's
    notifications (joined on ``PeerConnected``, left on ``PeerDisconnected``); without
    one, a person joins with their first audio and no one is seen leaving.

    Args:
        source: An ``Agent`` or an open ``AgentSession``.
        params: :class:`FishjamParams` (None: the defaults).
        notifier: A connected or connecting notifier for the participant events.
        name, input_name, output_name: pipecat's names for the processors.

    Raises:
        TypeError: ``source`` is neither an Agent nor an AgentSession, or ``notifier``
            is not a FishjamNotifier.
    """

    def __init__(
        self,
        source: Agent | AgentSession,
        params: FishjamParams | None = None,
        *,
        notifier: FishjamNotifier | None = None,
        name: str | None = None,
        input_name: str | None = None,
        output_name: str | None = None,
    ) -> None:
        super().__init__(name=name, input_name=input_name, output_name=output_name)
        if params is not None and not isinstance(params, FishjamParams):
            raise TypeError(f"params must be FishjamParams, not {type(params).__name__}")
        if notifier is not None and not isinstance(notifier, FishjamNotifier):
            raise TypeError(f"notifier must be a FishjamNotifier, not {type(notifier).__name__}")
        self._params = params if params is not None else FishjamParams()
        self._connection = FishjamConnection(source)
        self._input: FishjamInputTransport | None = None
        self._output: FishjamOutputTransport | None = None
        self._users: set[str] = set()
        self._connected = False
        self._unwatch: Callable[[], None] = _nothing
        self._tasks: set[asyncio.Task[None]] = set()
        self._participants: set[str] = set()
        self._first_joined = False
        self._notifier = notifier
        self._following: asyncio.Task[None] | None = None
        for event in (
            "on_connected",
            "on_disconnected",
            "on_client_connected",
            "on_client_disconnected",
            "on_first_participant_joined",
            "on_participant_joined",
            "on_participant_left",
        ):
            self._register_event_handler(event)

    @property
    def session(self) -> AgentSession | None:
        """The agent's session while the pipeline runs."""
        return self._connection.session

    @property
    def participants(self) -> list[str]:
        """Peer ids of the people in the room, as far as the transport knows."""
        return sorted(self._participants)

    def input(self) -> FishjamInputTransport:
        """The input processor (made once)."""
        if self._input is None:
            self._input = FishjamInputTransport(self, self._connection, self._params)
        return self._input

    def output(self) -> FishjamOutputTransport:
        """The output processor (made once)."""
        if self._output is None:
            self._output = FishjamOutputTransport(self, self._connection, self._params)
        return self._output

    def get_client_id(self, client: Any) -> str:
        """A client as the events pass it is its peer id."""
        return str(client)

    async def _open(self, user: str) -> None:
        session = await self._connection.open(user)
        self._users.add(user)
        if not self._connected:  # the input and output are set up concurrently
            self._connected = True
            self._unwatch = session.on_state_change(self._on_state_change)
            if self._notifier is not None:
                # an iterator, closed with the session: a handler would stay registered
                # on a long-lived notifier after the pipeline ended
                notes = self._notifier.notifications()
                self._following = asyncio.get_running_loop().create_task(self._follow(notes))
            await self._call_event_handler("on_connected")

    async def _follow(self, notes: NotificationIterator) -> None:
        """Reads the notifier's notifications while the session is open."""
        try:
            async for notification in notes:
                self._on_notification(notification)
        except AgentConnectionError as error:  # the notifier ended for good
            logger.warning("pipecat: no more participant events: the notifier ended (%s)", error)
        finally:
            await notes.aclose()

    def _on_state_change(self, change: Any) -> None:
        """The session ended by itself (the peer or room was removed, or reconnecting
        failed): ``on_disconnected`` tells the application, which ends its pipeline."""
        if change.state != "closed" or not self._connected:
            return
        self._connected = False
        logger.info("pipecat: the agent's session ended (%s)", change.cause or "closed by Fishjam")
        task = asyncio.get_running_loop().create_task(self._call_event_handler("on_disconnected"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close(self, user: str) -> None:
        if user not in self._users:
            return
        self._users.discard(user)
        last = not self._users
        if last:
            self._unwatch()
            following, self._following = self._following, None
            if following is not None:
                following.cancel()
                await asyncio.wait([following])  # its end, without swallowing ours
        await self._connection.close(user)
        if last and self._connected:
            self._connected = False
            await self._call_event_handler("on_disconnected")

    def _heard(self, peer_id: str) -> bool:
        """A peer's audio arrived: True when that makes it a new participant (no
        notifier, or audio before its notification)."""
        if peer_id in self._participants:
            return False
        self._participants.add(peer_id)
        return True

    async def _participant_event(self, kind: str, peer_id: str) -> None:
        if kind == "joined":
            if not self._first_joined:
                self._first_joined = True
                await self._call_event_handler("on_first_participant_joined", peer_id)
            await self._call_event_handler("on_participant_joined", peer_id)
            await self._call_event_handler("on_client_connected", peer_id)
        else:
            await self._call_event_handler("on_participant_left", peer_id, "left")
            await self._call_event_handler("on_client_disconnected", peer_id)

    def _on_notification(self, notification: Any) -> None:
        """Fishjam's notifications about people in this transport's room."""
        if self._input is None or not self._users:
            return
        if getattr(notification, "room_id", None) != self._connection.room_id:
            return
        if getattr(notification, "peer_type", None) != _WEBRTC:
            return
        peer_id: str = notification.peer_id
        if isinstance(notification, events.ServerMessagePeerConnected):
            if self._heard(peer_id):
                self._input.queue_event("joined", peer_id)
        elif isinstance(
            notification, events.ServerMessagePeerDisconnected | events.ServerMessagePeerDeleted
        ):
            if peer_id in self._participants:
                self._participants.discard(peer_id)
                self._input.forget_peer(peer_id)
                self._input.queue_event("left", peer_id)
