"""The server's HTTP port: ``/metrics``, ``/health`` and ``POST /dispatch``.

``POST /webhook`` (the webhook source) takes Fishjam's webhook bodies: it is
:func:`fishjam_fast.webhooks.webhook_handler` (200; 401 unsigned and 403 wrongly signed
when a secret is set, 400 not a notification, 413 too large: nothing dispatched).

``POST /dispatch`` takes ``{"room_id": "...", "metadata": ...}`` with
``Authorization: Bearer <dispatch token>`` and answers 202 ``{"job_id": "..."}``.
Refusals: 401 (no or wrong token, or no token configured), 413 (body over
``max_body_size``), 400 (not a JSON object with a non-empty string ``room_id``),
503 (the server is full or draining); nothing is dispatched on any of them.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..errors import AgentError
from .metrics import ServerMetrics
from .supervisor import ServerDrainingError, ServerFullError, Supervisor

__all__ = ["make_app"]

Dispatch = Callable[[str, Any], Awaitable[str]]
Feed = Callable[[Any], None]


def make_app(
    supervisor: Supervisor,
    metrics: ServerMetrics,
    dispatch: Dispatch,
    *,
    dispatch_token: str | None,
    max_body_size: int,
    feed: Feed | None = None,
    webhook_secret: str | None = None,
) -> web.Application:
    """The aiohttp application of the HTTP port (``POST /webhook`` when ``feed`` is
    given: the webhook source)."""
    app = web.Application(client_max_size=max_body_size)

    async def get_metrics(request: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def get_health(request: web.Request) -> web.Response:
        ready = sum(1 for w in supervisor.workers if w.ready)
        status = "draining" if supervisor.draining else ("ok" if ready else "starting")
        body = {
            "status": status,
            "workers": len(supervisor.workers),
            "workers_ready": ready,
            "jobs": len(supervisor.jobs()),
            "jobs_waiting": supervisor.waiting,
        }
        return web.json_response(body, status=200 if status == "ok" else 503)

    async def post_dispatch(request: web.Request) -> web.Response:
        if dispatch_token is None:
            return _error(401, "explicit dispatch is disabled: the server has no dispatch token")
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {dispatch_token}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return _error(401, "missing or wrong bearer token")
        if request.content_length is not None and request.content_length > max_body_size:
            return _error(413, f"body larger than {max_body_size} bytes")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"body larger than {max_body_size} bytes")
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "the body is not JSON")
        if not isinstance(body, dict):
            return _error(400, 'the body must be a JSON object {"room_id": ..., "metadata": ...}')
        room_id = body.get("room_id")
        if not isinstance(room_id, str) or not room_id or len(room_id) > 256:
            return _error(400, "room_id must be a non-empty string (at most 256 characters)")
        unknown = set(body) - {"room_id", "metadata"}
        if unknown:
            return _error(400, f"unknown members {sorted(unknown)}: allowed room_id, metadata")
        try:
            job_id = await dispatch(room_id, body.get("metadata"))
        except (ServerFullError, ServerDrainingError) as exc:
            return _error(503, str(exc))
        except AgentError as exc:  # the fleet's Redis unreachable (cluster.py)
            return _error(503, str(exc))
        return web.json_response({"job_id": job_id}, status=202)

    app.add_routes(
        [
            web.get("/metrics", get_metrics),
            web.get("/health", get_health),
            web.post("/dispatch", post_dispatch),
        ]
    )
    if feed is not None:
        from ..webhooks import webhook_handler

        app.router.add_post("/webhook", webhook_handler(feed, secret=webhook_secret))
    return app


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"errors": message}, status=status)
