"""Webhooks as the job source: Fishjam POSTs each room's notifications to the server.

A room created with ``webhookUrl=http://<server>/webhook`` has its notifications POSTed
there as a binary ``ServerMessage`` (a batch when the room asked for batching). With a
secret, ``x-fishjam-signature-256: sha256=<hex HMAC-SHA256 of the body>`` must match, or
the body is refused with 401 and nothing is dispatched.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SIGNATURE_HEADER", "WebhookRefused", "notifications_of"]

SIGNATURE_HEADER = "x-fishjam-signature-256"
"""The header carrying a webhook body's signature."""


class WebhookRefused(Exception):
    """A webhook body was refused (``status``: the HTTP status to answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def notifications_of(body: bytes, signature: str | None, secret: str | None) -> list[Any]:
    """The notifications of a webhook body, its signature checked when there is a secret.

    Raises:
        WebhookRefused: 401 for a missing or wrong signature, 400 for a body that is
            not a ``ServerMessage``.
    """
    import fishjam_fast

    if secret is not None:
        if not signature:
            raise WebhookRefused(401, f"missing {SIGNATURE_HEADER}")
        if not fishjam_fast.verify_webhook_signature(body, signature, secret):
            raise WebhookRefused(401, f"wrong {SIGNATURE_HEADER}")
    try:
        return list(fishjam_fast.decode_server_notifications(body))
    except (ValueError, fishjam_fast.AgentError) as exc:
        raise WebhookRefused(400, f"not a Fishjam notification: {exc}") from None
