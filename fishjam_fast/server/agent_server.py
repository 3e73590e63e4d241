"""``AgentServer``: the supervisor, the job sources and the HTTP port, put together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Literal

from ..rest import AsyncFishjamClient, FishjamApiError
from .dispatch import DispatchRule, EndJob, OneAgentPerRoom, StartJob, notification_name
from .job import JobRequest
from .metrics import ServerMetrics
from .notifications import NotificationSource
from .options import ServerOptions
from .supervisor import Supervisor
from .tasks import BackgroundTasks

__all__ = ["AgentServer"]

logger = logging.getLogger("fishjam_fast.server")

Source = Literal["socket", "webhook", "none"]


class AgentServer:
    """Runs an entrypoint for every job, in worker processes on every core.

    Jobs come from Fishjam's server notifications through a dispatch rule (by default
    one agent per room while a WebRTC peer is connected to it), from :meth:`dispatch`,
    and from ``POST /dispatch`` on the HTTP port. Use ``await server.serve()`` (until
    :meth:`request_stop`), ``async with server:``, or the blocking :meth:`run`, which
    also handles SIGTERM (drain) and SIGINT (drain; a second one stops at once).
    """

    def __init__(
        self,
        entrypoint: str | Callable[..., Any],
        *,
        fishjam_url: str | None = None,
        management_token: str | None = None,
        prewarm: str | Callable[..., Any] | None = None,
        rule: DispatchRule | None = None,
        source: Source = "socket",
        options: ServerOptions | None = None,
        log_level: int | None = None,
        **overrides: Any,
    ) -> None:
        """Configures the server; nothing starts before :meth:`start`.

        Args:
            entrypoint: ``async def entry(job)``, or ``"module:function"`` naming it.
                It runs in the worker processes, so it must be importable there (a
                module-level function).
            fishjam_url: The Fishjam ID or URL; None starts a local Fishjam in a child
                process (``fishjam_fast.local``, for development).
            management_token: Fishjam's management token (default: the environment's
                ``FISHJAM_MANAGEMENT_TOKEN``). Never logged.
            prewarm: Run once per worker process before it takes jobs (``"module:fn"``
                or a callable; sync or async). None: the entrypoint module's
                ``prewarm`` if it has one.
            rule: The dispatch rule (default :class:`OneAgentPerRoom`).
            source: ``"socket"``: jobs from Fishjam's notification socket through the
                rule; ``"webhook"``: from webhooks POSTed to the HTTP port's
                ``/webhook`` (create rooms with that ``webhookUrl``); ``"none"``:
                explicit dispatch only.
            options: The :class:`ServerOptions`; keyword ``overrides`` replace fields.
            log_level: The workers' logging level when they have no handler (None:
                theirs unset).
            **overrides: Fields of :class:`ServerOptions`.

        Raises:
            ValueError: An option is invalid, or a Fishjam URL is given without a token.
            TypeError: An unknown keyword.
        """
        unknown = set(overrides) - ServerOptions.names()
        if unknown:
            raise TypeError(
                f"unknown AgentServer options {sorted(unknown)}; allowed: "
                f"{sorted(ServerOptions.names())}"
            )
        base = options or ServerOptions()
        if overrides:
            base = ServerOptions(**{**_fields(base), **overrides})
        if source not in ("socket", "webhook", "none"):
            raise ValueError(f"source must be 'socket', 'webhook' or 'none', not {source!r}")
        if source == "webhook" and base.metrics_port is None:
            raise ValueError("the webhook source needs the HTTP port (metrics_port not None)")
        token = management_token or os.environ.get("FISHJAM_MANAGEMENT_TOKEN")
        if fishjam_url is not None and not token:
            raise ValueError(
                "a management token is needed with a Fishjam URL (management_token= or "
                "FISHJAM_MANAGEMENT_TOKEN)"
            )
        if not callable(entrypoint) and not isinstance(entrypoint, str):
            raise TypeError(
                f"entrypoint must be a callable or 'module:function', not {entrypoint!r}"
            )
        self.options = base
        self.rule: DispatchRule = rule if rule is not None else OneAgentPerRoom()
        self._entry = entrypoint
        self._prewarm = prewarm
        self._source = source
        self._fishjam_url = fishjam_url
        self._token = token
        self._log_level = log_level
        self._local: Any = None
        self._rest: AsyncFishjamClient | None = None
        self.metrics = ServerMetrics()
        self._supervisor: Supervisor | None = None
        self._runner: Any = None
        self._stop = asyncio.Event()
        self._drain = True
        # the reconciliation loop and one-off reconciliations; failures are logged
        self._tasks = BackgroundTasks("agent server task")
        self._reconciling: asyncio.Lock | None = None
        self._held: list[Any] | None = None
        self.http_url: str | None = None
        self._notifications: NotificationSource | None = None
        self._cluster: Any = None  # a Cluster when options.redis_url is set

    def __repr__(self) -> str:  # the token is never shown
        return f"AgentServer({self._entry!r}, fishjam_url={self.fishjam_url!r})"

    # -- public state ----------------------------------------------------------------
    @property
    def fishjam_url(self) -> str | None:
        """The Fishjam URL the server uses (the local one's once started)."""
        return self._local.url if self._local is not None else self._fishjam_url

    @property
    def supervisor(self) -> Supervisor:
        """The supervisor (workers, jobs); set by :meth:`start`."""
        if self._supervisor is None:
            raise RuntimeError("the server is not started")
        return self._supervisor

    # -- lifecycle -------------------------------------------------------------------
    async def __aenter__(self) -> AgentServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop(drain=exc_type is None)

    async def start(self) -> None:
        """Starts the local Fishjam (if no URL), the workers, the HTTP port and the
        notification source; returns once every worker is ready.

        Raises:
            TimeoutError: The workers were not ready within ``worker_start_timeout``.
            RuntimeError: The workers cannot load the entrypoint or prewarm.
            OSError: The HTTP port cannot be bound.
        """
        options = self.options
        self._reconciling = asyncio.Lock()
        url, token = self._fishjam_url, self._token
        if url is None:
            from ..local.process import LocalFishjamProcess

            local = LocalFishjamProcess(seconds=10 * 365 * 86400.0)
            await asyncio.get_running_loop().run_in_executor(None, local.__enter__)
            self._local = local
            url, token = local.url, local.token
            logger.info("started a local Fishjam at %s", url)
            # a throwaway development server with a random token: the developer needs
            # it to make rooms, so it goes to stdout once (never to the log)
            print(f"local Fishjam at {url} (management token: {token})", flush=True)
        assert token is not None
        self._rest = AsyncFishjamClient(url, token, timeout=options.rest_timeout)
        self._supervisor = Supervisor(
            self._entry,
            self._prewarm,
            options,
            self._rest,
            log_level=self._log_level,
            on_event=self._event,
        )
        self.metrics.supervisor = self._supervisor
        try:
            await self._supervisor.start()
            if options.redis_url is not None:
                await self._start_cluster()
            if options.metrics_port is not None:
                await self._start_http()
            if self._source == "socket":
                await self._start_notifications(url, token)
            if self._source != "none":
                await self.reconcile()
                if options.reconcile_interval is not None:
                    self._background(self._reconcile_every(options.reconcile_interval))
        except BaseException:
            await self.stop(drain=False)
            raise
        logger.info(
            "agent server ready: %d workers, Fishjam %s, HTTP %s",
            len(self._supervisor.workers),
            self._rest.fishjam_url,
            self.http_url or "off",
        )

    async def _start_cluster(self) -> None:
        """Joins the fleet on Redis (several boxes sharing the rooms)."""
        from .cluster import Cluster

        assert self._rest is not None
        reset = self.reconcile if self._source != "none" else None
        cluster = Cluster(self.options, self.supervisor, self._rest, on_reset=reset)
        self._cluster = cluster
        self.metrics.registry.register(_ClusterCollector(cluster))
        self.metrics.fleet = True
        await cluster.start()

    @property
    def cluster(self) -> Any:
        """The box's :class:`~fishjam_fast.server.cluster.Cluster` (with ``redis_url``),
        else None."""
        return self._cluster

    async def _start_http(self) -> None:
        from aiohttp import web

        from .http import make_app

        options = self.options
        app = make_app(
            self.supervisor,
            self.metrics,
            self.dispatch,
            dispatch_token=options.dispatch_token,
            max_body_size=options.max_body_size,
            feed=self.feed if self._source == "webhook" else None,
            webhook_secret=options.webhook_secret,
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, options.metrics_host, options.metrics_port)
        await site.start()
        port = runner.addresses[0][1]
        self.http_url = f"http://{options.metrics_host}:{port}"
        if options.dispatch_token is None:
            logger.info("POST /dispatch is disabled (no dispatch token)")

    async def _start_notifications(self, url: str, token: str) -> None:
        """Subscribes to the notification socket (reconciled over REST after it)."""
        source = NotificationSource(url, token, self.feed)
        self._notifications = source
        await source.start()

    def _event(self, kind: str, data: dict[str, Any]) -> None:
        if self._cluster is not None:
            self._cluster.on_event(kind, data)
        if kind == "latency":
            self.metrics.dispatch_latency.observe(data["seconds"])

    async def stop(self, *, drain: bool = True) -> None:
        """Stops the server: with ``drain``, running jobs get ``drain_timeout`` seconds to
        end before they are cancelled; every agent peer is deleted."""
        source = self._notifications
        if source is not None:
            await source.close()
            self._notifications = None
        timeout = self.options.drain_timeout if drain else 0.0
        if self._cluster is not None:
            if self.options.on_shutdown == "drain" and drain:
                # the jobs end here within drain_timeout; the rest go to the other boxes
                began = time.monotonic()
                await self._cluster.drain(timeout)
                timeout = max(0.0, timeout - (time.monotonic() - began))
            else:
                # the rooms go to the other boxes rather than end with this one
                await self._cluster.handover(max(1.0, self.options.drain_timeout))
        if self._supervisor is not None:
            await self._supervisor.drain(timeout)
        if self._cluster is not None:
            await self._cluster.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._tasks.cancel()
        if self._rest is not None:
            await self._rest.aclose()
            self._rest = None
        if self._local is not None:
            local, self._local = self._local, None
            await asyncio.get_running_loop().run_in_executor(None, local.__exit__, None, None, None)

    def request_stop(self, *, drain: bool = True) -> None:
        """Makes :meth:`serve` return (after draining, unless ``drain`` is False)."""
        self._drain = self._drain and drain
        self._stop.set()

    async def serve(self) -> None:
        """Starts, runs until :meth:`request_stop`, then stops."""
        await self.start()
        try:
            await self._stop.wait()
        finally:
            await self.stop(drain=self._drain)

    def run(self) -> int:
        """Runs the server in this (main) thread until SIGTERM or SIGINT; returns 0.

        SIGTERM and the first SIGINT drain (no new jobs, ``drain_timeout`` for the
        running ones, then cancel); a second SIGINT stops at once.
        """
        from ..runner import run

        async def main() -> None:
            loop = asyncio.get_running_loop()
            interrupts = 0

            def on_sigint() -> None:
                nonlocal interrupts
                interrupts += 1
                if interrupts == 1:
                    logger.warning("SIGINT: draining (again to stop at once)")
                    self.request_stop()
                else:
                    logger.warning("SIGINT again: stopping now")
                    self.request_stop(drain=False)
                    self._cancel_drain()

            def on_sigterm() -> None:
                if self._cluster is not None and self.options.on_shutdown == "handover":
                    logger.warning("SIGTERM: handing this box's rooms over")
                else:
                    logger.warning("SIGTERM: draining for up to %g s", self.options.drain_timeout)
                self.request_stop()

            loop.add_signal_handler(signal.SIGINT, on_sigint)
            loop.add_signal_handler(signal.SIGTERM, on_sigterm)
            await self.serve()

        with contextlib.suppress(asyncio.CancelledError):
            run(main(), use_uvloop=self.options.use_uvloop)
        return 0

    def _cancel_drain(self) -> None:
        # a drain in progress: its wait ends now, and the jobs are cancelled
        if self._cluster is not None:
            self._cluster.cut_drain()
        if self._supervisor is not None:
            self._supervisor.cut_drain()

    # -- jobs ------------------------------------------------------------------------
    async def dispatch(
        self, room_id: str, metadata: Any = None, *, peer_id: str | None = None
    ) -> str:
        """Starts a job in a room now (explicit dispatch; the rule is not consulted).

        Args:
            room_id: The room; the job's agent peer is created there.
            metadata: Anything JSON-serialisable, for :attr:`Job.metadata`.
            peer_id: What :attr:`Job.peer_id` says (None by default).

        Returns:
            The job's id (with ``redis_url``: its fleet-wide key; the job runs on
            whichever box takes it).

        Raises:
            ServerFullError: Every worker is full and the server refuses (see
                ``when_full``), or too many jobs wait.
            ServerDrainingError: The server is draining.
            FleetUnavailableError: With ``redis_url``: Redis cannot be reached.
            ValueError: ``room_id`` is empty.
        """
        request = JobRequest(room_id, peer_id, metadata)
        if self._cluster is not None:
            return str(await self._cluster.submit(request))
        return self.supervisor.submit(request)

    def feed(self, notification: Any) -> None:
        """Hands one server notification to the dispatch rule and applies its answer.

        A ``NotificationGap`` (the notifier reconnected) starts a REST reconciliation.
        Call it with notifications from your own source (e.g. webhooks) as well.
        """
        if notification_name(notification) == "NotificationGap":
            self.metrics.notification_gaps += 1
            logger.warning(
                "notifications may have been missed (%s): reconciling over REST",
                getattr(notification, "cause", "reconnected"),
            )
            self._background(self.reconcile())
            return
        supervisor = self._supervisor
        if supervisor is None or supervisor.draining:
            return
        if self._held is not None:  # a reconciliation is listing the rooms
            self._held.append(notification)
            return
        for action in self.rule.on_notification(notification):
            self._apply(action)

    def _apply(self, action: StartJob | EndJob) -> None:
        if self._cluster is not None:
            self._cluster.apply(action)
            return
        supervisor = self.supervisor
        if isinstance(action, StartJob):
            with contextlib.suppress(Exception):  # refusals are counted and logged
                supervisor.submit(action.request)
        else:
            supervisor.end_key(action.key)

    async def reconcile(self) -> None:
        """Brings the jobs in line with Fishjam's rooms, listed over REST: the rule's
        jobs that should run and do not are started, the others ended, and every job
        whose room is gone is ended."""
        assert self._reconciling is not None and self._rest is not None
        async with self._reconciling:
            # notifications arriving while the rooms are listed are held, then replayed
            # over the listing (the rule's view is state: a replayed one already in the
            # listing changes nothing), so none is lost between the two
            self._held = []
            listed_at = time.monotonic()
            listed_wall = time.time()
            try:
                rooms = await self._rest.list_rooms()
            except FishjamApiError as exc:
                logger.error("reconciliation failed: cannot list the rooms: %s", exc)
                rooms = None
            held, self._held = self._held, None
            supervisor = self.supervisor
            if rooms is None or supervisor.draining:
                for notification in held:
                    self.feed(notification)
                return
            self.rule.reset(rooms)
            for notification in held:
                self.rule.on_notification(notification)
            desired = self.rule.desired()
            if self._cluster is not None:
                try:
                    await self._cluster.reconcile(desired, listed_wall)
                except Exception as exc:  # Redis unreachable: the next one heals it
                    logger.error("fleet reconciliation failed: %s", exc)
                return
            existing = {room.id for room in rooms}
            started = ended = 0
            for job in supervisor.jobs():
                key = job.request.key
                # a job submitted after the listing began may be in a room it misses
                gone = job.request.room_id not in existing and job.submitted_at < listed_at
                if gone or (key is not None and key not in desired):
                    supervisor.cancel(job.id)
                    ended += 1
            for key, request in desired.items():
                if supervisor.job_for_key(key) is None:
                    self._apply(StartJob(request))
                    started += 1
            logger.info(
                "reconciled with %d rooms: %d jobs started, %d ended", len(rooms), started, ended
            )

    async def _reconcile_every(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.reconcile()

    def _background(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        self._tasks.spawn(coroutine)


class _ClusterCollector:
    """The fleet's gauges in the box's registry."""

    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster

    def collect(self) -> Any:
        return self._cluster.collect()


def _fields(options: ServerOptions) -> dict[str, Any]:
    return {name: getattr(options, name) for name in ServerOptions.names()}
