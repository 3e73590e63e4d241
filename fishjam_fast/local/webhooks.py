"""The webhook poster: a room's notifications POSTed to its ``webhookUrl``.

Each notification of a room created with ``webhookUrl`` is POSTed there as the binary
``ServerMessage`` (``Content-Type: application/x-protobuf``), in order: one queue and
one sending task per room. A room created with ``batchWebhookNotifications`` gets a
``ServerMessage{notification_batch{notifications}}`` per POST instead, holding every
notification queued when the POST starts (at most ``batch_max``): the first is sent
alone, the ones emitted while a POST is in flight travel together in the next.

With a webhook secret (``LocalFishjam(webhook_secret=...)``, ``--webhook-secret``),
every POST carries ``x-fishjam-signature-256: sha256=<hex HMAC-SHA256 of the body>``.

Bounds, so a dead receiver never blocks or grows the server: every POST has a timeout
(``timeout``), a failed POST (connection error, timeout, a status other than 2xx) is
retried at most ``retries`` times with a doubling pause from ``backoff`` seconds, then
dropped, logged (logger ``fishjam_fast.local``) and counted in :attr:`WebhookPoster.stats`;
a room's queue holds at most ``max_queue`` notifications (more are dropped and counted).
Emitting only queues: the server never waits for a receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections import deque
from dataclasses import dataclass, field

import aiohttp

from fishjam_fast._proto import server_notifications_pb2

ServerMessage = server_notifications_pb2.ServerMessage

#: The header carrying the body's signature.
SIGNATURE_HEADER = "x-fishjam-signature-256"
#: The content type of every webhook body.
CONTENT_TYPE = "application/x-protobuf"

log = logging.getLogger("fishjam_fast.local")


def sign(body: bytes, secret: str) -> str:
    """The ``x-fishjam-signature-256`` value of ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class WebhookStats:
    """What the poster did (live counters)."""

    #: POSTs answered with 2xx.
    posted: int = 0
    #: Notifications carried by those POSTs.
    notifications: int = 0
    #: POSTs retried after a failure.
    retries: int = 0
    #: POSTs given up on after every retry (their notifications are lost).
    failed: int = 0
    #: Notifications dropped because a room's queue was full.
    dropped: int = 0


@dataclass
class _RoomQueue:
    url: str
    batch: bool
    items: deque[tuple[server_notifications_pb2.ServerMessage, bytes]] = field(
        default_factory=deque
    )
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    done: bool = False  # the room is deleted: end once the queue is empty
    busy: bool = False  # a POST is in flight
    task: asyncio.Task[None] | None = None


class WebhookPoster:
    """Posts room notifications to webhook URLs (see the module docstring)."""

    def __init__(
        self,
        secret: str | None = None,
        *,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.1,
        max_queue: int = 10_000,
        batch_max: int = 100,
    ) -> None:
        """Configure (nothing is sent before the first notification).

        Args:
            secret: Sign every body with this secret (None: unsigned).
            timeout: Seconds one POST may take.
            retries: Further attempts after a failed POST.
            backoff: Seconds before the first retry (doubling after each).
            max_queue: Notifications one room may have waiting.
            batch_max: Most notifications in one batch.

        Raises:
            ValueError: If a bound is out of range.
        """
        if not timeout > 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout}")
        if retries < 0 or backoff < 0 or max_queue < 1 or batch_max < 1:
            raise ValueError("retries and backoff must be >= 0, max_queue and batch_max >= 1")
        self.secret = secret
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_queue = max_queue
        self.batch_max = batch_max
        #: Counters.
        self.stats = WebhookStats()
        self._rooms: dict[str, _RoomQueue] = {}
        self._session: aiohttp.ClientSession | None = None

    def post(
        self,
        room_id: str,
        url: str,
        batch: bool,
        message: server_notifications_pb2.ServerMessage,
        frame: bytes,
    ) -> None:
        """Queue one notification of a room (never waits).

        Args:
            room_id: The room.
            url: Its webhook URL.
            batch: Whether it batches.
            message: The notification.
            frame: ``message`` serialized.
        """
        queue = self._rooms.get(room_id)
        if queue is None or queue.done:
            queue = self._rooms[room_id] = _RoomQueue(url, batch)
            queue.task = asyncio.get_running_loop().create_task(self._run(room_id, queue))
        if len(queue.items) >= self.max_queue:
            self.stats.dropped += 1
            log.warning(
                "local Fishjam: webhook queue of room %s full; notification dropped", room_id
            )
            return
        queue.items.append((message, frame))
        queue.wake.set()

    def room_done(self, room_id: str) -> None:
        """The room is deleted: its queue ends once what it holds is posted."""
        queue = self._rooms.get(room_id)
        if queue is not None:
            queue.done = True
            queue.wake.set()

    @property
    def pending(self) -> int:
        """Notifications queued or in flight."""
        return sum(len(q.items) + q.busy for q in self._rooms.values())

    async def drain(self, timeout: float) -> None:
        """Wait until every queued notification was posted or given up on.

        Args:
            timeout: Seconds.

        Raises:
            TimeoutError: If some are still pending after ``timeout``.
        """
        async with asyncio.timeout(timeout):
            while self.pending:
                await asyncio.sleep(0.01)

    async def close(self) -> None:
        """Stop every sending task (what is queued is lost) and close the HTTP session."""
        tasks = [q.task for q in self._rooms.values() if q.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._rooms.clear()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _run(self, room_id: str, queue: _RoomQueue) -> None:
        try:
            while True:
                if not queue.items:
                    if queue.done:
                        return
                    queue.wake.clear()
                    await queue.wake.wait()
                    continue
                count = min(len(queue.items), self.batch_max) if queue.batch else 1
                taken = [queue.items.popleft() for _ in range(count)]
                if queue.batch:
                    body = ServerMessage(
                        notification_batch=ServerMessage.NotificationBatch(
                            notifications=[m for m, _ in taken]
                        )
                    ).SerializeToString()
                else:
                    body = taken[0][1]
                queue.busy = True
                try:
                    await self._send(queue.url, body, len(taken))
                finally:
                    queue.busy = False
        finally:
            if self._rooms.get(room_id) is queue:
                del self._rooms[room_id]

    async def _send(self, url: str, body: bytes, count: int) -> None:
        headers = {"Content-Type": CONTENT_TYPE}
        if self.secret is not None:
            headers[SIGNATURE_HEADER] = sign(body, self.secret)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        pause = self.backoff
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
                await asyncio.sleep(pause)
                pause *= 2
            problem = await self._attempt(url, body, headers)
            if problem is None:
                self.stats.posted += 1
                self.stats.notifications += count
                return
        self.stats.failed += 1
        log.warning(
            "local Fishjam: webhook POST to %s failed %d times (%s); %d notification(s) lost",
            url,
            self.retries + 1,
            problem,
            count,
        )

    async def _attempt(self, url: str, body: bytes, headers: dict[str, str]) -> str | None:
        """One POST: None on 2xx, else what went wrong."""
        assert self._session is not None
        try:
            async with self._session.post(url, data=body, headers=headers) as response:
                with contextlib.suppress(Exception):
                    await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"status {response.status}"
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"
