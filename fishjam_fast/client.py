"""``FishjamClient`` whose ``create_agent`` returns a fishjam_fast :class:`Agent`.

It is the plain SDK's REST client (``fishjam-server-sdk``, the ``sdk`` extra) with one
method changed, so an application that creates agents with the plain SDK switches by
importing ``FishjamClient`` from ``fishjam_fast`` instead of ``fishjam``.
"""

from __future__ import annotations

from typing import Any

try:
    from fishjam import FishjamClient as _PlainFishjamClient
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "fishjam_fast.FishjamClient needs the plain SDK: pip install 'fishjam-fast[sdk]'"
    ) from exc

from .agent import Agent

__all__ = ["FishjamClient"]


class FishjamClient(_PlainFishjamClient):  # type: ignore[misc]
    """The plain SDK's ``FishjamClient``, creating fishjam_fast agents."""

    def create_agent(self, room_id: str, options: Any = None, **agent_options: Any) -> Agent:
        """Creates an agent peer in a room.

        Args:
            room_id: The room.
            options: The plain SDK's ``AgentOptions`` (output sample rate etc.).
            **agent_options: Keyword options of :class:`fishjam_fast.Agent`.

        Returns:
            A fishjam_fast agent, ready to :meth:`~fishjam_fast.Agent.connect`.
        """
        return Agent.from_sdk(super().create_agent(room_id, options), **agent_options)
