"""Where the examples run; copy this file along with an example.

With ``FISHJAM_ID`` and ``FISHJAM_MANAGEMENT_TOKEN`` set, on that real Fishjam: the
example creates its room(s) there and prints their ids; join one with a browser or
phone and speak. Otherwise on the local Fishjam (:mod:`fishjam_fast.local`, which needs
``pip install 'fishjam-fast[local]'``), started in this process on 127.0.0.1, where a
simulated person joins each room and speaks, so the example has someone to hear.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fishjam_fast.local import AudioSource, LocalFishjam


def arguments(doc: str | None, seconds: float, **more: Any) -> argparse.Namespace:
    """The command line every example shares: ``--seconds``, plus ``more`` (name: default).

    Args:
        doc: The example's docstring (the ``--help`` text).
        seconds: The default of ``--seconds``: how long the example runs.
        **more: Further integer options, e.g. ``agents=10`` for ``--agents``.

    Returns:
        The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=seconds, help="run this long, then end")
    for name, default in more.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    args = parser.parse_args()
    if not args.seconds > 0:
        parser.error("--seconds must be positive")
    return args


@dataclass
class Fishjam:
    """A Fishjam to run against: pass ``fishjam_id`` and ``management_token`` to a REST
    client (:class:`fishjam_fast.AsyncFishjamClient` or the plain SDK's ``FishjamClient``)."""

    fishjam_id: str
    management_token: str
    local: LocalFishjam | None
    """The in-process local Fishjam, or None on a real one."""

    async def person_speaks(self, room_id: str, source: AudioSource | None = None) -> str | None:
        """Someone speaks in the room: locally a simulated person (``source``, by default
        a voice-like signal, repeated until the server stops); on a real Fishjam, you.

        Call it after the agent connected: a person's audio goes to the agents in the
        room at the time.

        Returns:
            The simulated person's peer id, or None on a real Fishjam.
        """
        if self.local is None:
            print(f"room {room_id}: join it and speak", flush=True)
            return None
        from fishjam_fast.local import AudioSource

        source = source or AudioSource.speech("Hello! Can you hear me? I am the local person.")
        speaker = await self.local.add_speaking_peer(room_id, source, loop=True)
        return speaker.peer_id

    def chunks_recorded(self, agent_peer_id: str) -> int | None:
        """Chunks the local Fishjam received on the agent's tracks (None on a real one)."""
        if self.local is None:
            return None
        return sum(t.chunk_count for t in self.local.agent(agent_peer_id).tracks.values())

    def interrupts_recorded(self, agent_peer_id: str) -> int | None:
        """Interrupts the local Fishjam received on the agent's tracks (None on a real one)."""
        if self.local is None:
            return None
        return sum(len(t.interrupts) for t in self.local.agent(agent_peer_id).tracks.values())


@asynccontextmanager
async def fishjam() -> AsyncIterator[Fishjam]:
    """The real Fishjam of ``FISHJAM_ID``/``FISHJAM_MANAGEMENT_TOKEN``, else a local one
    (stopped on exit)."""
    fishjam_id = os.environ.get("FISHJAM_ID")
    token = os.environ.get("FISHJAM_MANAGEMENT_TOKEN")
    if fishjam_id:
        if not token:
            sys.exit("FISHJAM_ID is set: set FISHJAM_MANAGEMENT_TOKEN too")
        yield Fishjam(fishjam_id, token, None)
        return
    try:
        from fishjam_fast.local import LocalFishjam
    except ImportError as error:  # the `local` extra: aiohttp
        sys.exit(f"the local Fishjam needs pip install 'fishjam-fast[local]' ({error})")
    async with LocalFishjam() as local:
        print(f"local Fishjam at {local.url}", flush=True)
        yield Fishjam(local.url, local.management_token, local)
