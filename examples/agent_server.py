"""An agent server: an echo agent in every room while people are in it, on every core.

    pip install 'fishjam-fast[server]'
    python examples/agent_server.py          # tries it on a local Fishjam it starts

Against a real Fishjam, from the directory holding this file:

    export FISHJAM_MANAGEMENT_TOKEN=...      # not on the command line: ps shows that
    python -m fishjam_fast serve agent_server:entry --fishjam-url https://... \\
        --workers auto --metrics-port 9464

Each worker process runs ``prewarm`` once, then many ``entry`` jobs as tasks. A job
gets an agent created for its room; the server deletes it when the job ends (the room
empties, or ``entry`` returns).
"""

from __future__ import annotations

import logging
import time

import fishjam_fast
from fishjam_fast import IncomingTrackData, OutgoingAudioTrackOptions

WARMED_AT = 0.0


def prewarm() -> None:
    """Runs once per worker process before it takes jobs: load models, open pools."""
    global WARMED_AT
    WARMED_AT = time.time()


async def entry(job: fishjam_fast.Job) -> None:
    """One job: echo what the room says until the room empties."""
    async with job.agent.connect() as session:
        options = OutgoingAudioTrackOptions(metadata={"warmed_at": WARMED_AT})
        track = await session.add_track(options)
        async for message in session.receive():
            if isinstance(message, IncomingTrackData):
                await track.send_chunk(message.data)


if __name__ == "__main__":  # needed: worker processes import this module
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    fishjam_fast.AgentServer(entry, metrics_port=9464).run()
