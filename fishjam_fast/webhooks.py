"""Webhooks: decoding Fishjam's webhook bodies, checking their signature, and a small
ready receiver (an aiohttp route, for users without a web framework of their own).

``decode_server_notifications`` and ``verify_webhook_signature`` give the plain SDK's
answers (its ``fishjam`` functions of the same names) with fishjam_fast's classes; the
receiver needs aiohttp (the ``local`` extra).
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeAlias

from . import _notifications, events
from .errors import AgentProtocolError

if TYPE_CHECKING:
    from aiohttp import web
    from typing_extensions import Buffer

__all__ = [
    "SIGNATURE_HEADER",
    "decode_server_notifications",
    "verify_webhook_signature",
    "webhook_app",
    "webhook_handler",
]

logger = logging.getLogger("fishjam_fast")

SIGNATURE_HEADER = "x-fishjam-signature-256"
"""The header of a signed webhook: ``sha256=<hex HMAC-SHA256 of the raw body>``."""

DEFAULT_MAX_BODY_SIZE = 1024 * 1024
"""Largest webhook body the receiver reads (a batch of notifications is small)."""

WebhookHandler: TypeAlias = Callable[[Any], None] | Callable[[Any], Awaitable[None]]

_NOT_PROTOBUF = ("text/", "application/json", "application/x-www-form-urlencoded", "multipart/")


def decode_server_notifications(binary: Buffer) -> list[Any]:
    """Decodes a webhook body (one notification, or a batch) into notifications.

    Args:
        binary: The raw request body (the plain SDK's parameter name).

    Returns:
        The notifications (``fishjam_fast.events``), in order; a batch is unpacked.
        Members this version does not know are left out, as the plain SDK does
        (which also leaves out voice activity and track forwarding: those are here).

    Raises:
        AgentProtocolError: (a ValueError) the body is not a valid ServerMessage.
        TypeError: ``binary`` is not a bytes-like object.
    """
    skip = (events.UnknownNotification, *events.CONTROL_MESSAGES)
    return [n for n in _notifications.decode_server_message(binary) if not isinstance(n, skip)]


def verify_webhook_signature(body: Buffer, signature: str, secret: str) -> bool:
    """Checks a webhook's ``x-fishjam-signature-256`` header, in constant time.

    Args:
        body: The raw request body, before decoding.
        signature: The header's value, ``sha256=<hex>`` (the prefix is optional).
        secret: The webhook secret configured in Fishjam.

    Returns:
        True when the signature is the HMAC-SHA256 of ``body`` with ``secret``.

    Raises:
        TypeError: ``signature`` or ``secret`` is not a str, ``body`` not a buffer.
    """
    if not isinstance(signature, str) or not isinstance(secret, str):
        raise TypeError("signature and secret must be str")
    expected = hmac.new(secret.encode(), memoryview(body), hashlib.sha256).hexdigest()
    provided = signature.strip().removeprefix("sha256=")
    # bytes: a non-ASCII header is a wrong signature here, not a TypeError
    return hmac.compare_digest(provided.encode("utf-8", "replace"), expected.encode())


def webhook_handler(
    handlers: WebhookHandler | Iterable[WebhookHandler],
    *,
    secret: str | None = None,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp request handler receiving Fishjam's webhooks (for an app of your own:
    ``app.router.add_post("/fishjam", webhook_handler(on_notification))``).

    It answers 405 to anything but POST; 401 without a signature and 403 with a
    wrong one when ``secret`` is set; 413 for a body beyond the app's
    ``client_max_size``; 400 for a body that is not protobuf (a text, JSON or form
    content type) or not a valid ServerMessage; 500 if a handler raised (logged);
    else 200 after every handler has returned (async ones awaited), in order.

    Args:
        handlers: A handler or several, called with each notification.
        secret: The webhook secret; None accepts unsigned webhooks.

    Raises:
        TypeError: a handler is not callable, or ``secret`` not a str.
    """
    from aiohttp import web

    chosen = [handlers] if callable(handlers) else list(handlers)
    for handler in chosen:
        if not callable(handler):
            raise TypeError(f"handler must be callable, not {type(handler).__name__}")
    if secret is not None and not isinstance(secret, str):
        raise TypeError(f"secret must be a str or None, not {type(secret).__name__}")

    async def receive(request: web.Request) -> web.Response:
        if request.method != "POST":
            return web.Response(status=405, text="POST only", headers={"Allow": "POST"})
        content_type = request.headers.get("Content-Type", "").lower()
        if content_type.startswith(_NOT_PROTOBUF):
            return web.Response(status=400, text=f"not a protobuf body: {content_type}")
        body = await request.read()  # aiohttp answers 413 beyond client_max_size
        if secret is not None:
            signature = request.headers.get(SIGNATURE_HEADER)
            if signature is None:
                return web.Response(status=401, text=f"missing {SIGNATURE_HEADER}")
            if not verify_webhook_signature(body, signature, secret):
                return web.Response(status=403, text="wrong signature")
        try:
            notifications = decode_server_notifications(body)
        except AgentProtocolError as exc:
            return web.Response(status=400, text=str(exc))
        for notification in notifications:
            for handler in chosen:
                try:
                    result = handler(notification)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    logger.exception("a fishjam_fast webhook handler failed on %r", notification)
                    return web.Response(status=500, text="handler failed")
        return web.Response(status=200)

    return receive


def webhook_app(
    handlers: WebhookHandler | Iterable[WebhookHandler],
    *,
    secret: str | None = None,
    path: str = "/",
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
) -> web.Application:
    """A ready aiohttp application receiving Fishjam's webhooks at ``path``.

    Run it with ``aiohttp.web.run_app(webhook_app(on_notification, secret=...))`` or
    an ``AppRunner``; see :func:`webhook_handler` for what it answers.

    Args:
        handlers: A handler or several, called with each notification.
        secret: The webhook secret; None accepts unsigned webhooks.
        path: The route.
        max_body_size: Largest body accepted, in bytes (larger: 413).

    Raises:
        TypeError, ValueError: a bad handler, secret or size.
    """
    from aiohttp import web

    if isinstance(max_body_size, bool) or not isinstance(max_body_size, int) or max_body_size < 1:
        raise ValueError(f"max_body_size must be a positive int, got {max_body_size!r}")
    app = web.Application(client_max_size=max_body_size)
    app.router.add_route("*", path, webhook_handler(handlers, secret=secret))
    return app
