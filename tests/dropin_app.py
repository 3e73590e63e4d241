"""An echo bot written the way the plain SDK's docs and examples write one.

tests/test_dropin_install.py runs it in a child process against the local Fishjam, as
it is (the reference: the plain SDK alone), with ``fishjam_fast.install()`` before or
after its imports (``DROPIN_MODE``), and unchanged under ``python -m fishjam_fast run``.
It echoes ``sys.argv[1]`` chunks, then connects once more after its peer was deleted
(the server refuses the token), prints what it saw as JSON and exits with status 3.
"""

# ruff: noqa: E402  (the imports after install(), as the program under test is written)
import asyncio
import json
import os
import sys

MODE = os.environ.get("DROPIN_MODE", "plain")
if MODE == "install-first":
    import fishjam_fast

    fishjam_fast.install()

import fishjam.agent as agent_module
from fishjam import FishjamClient
from fishjam.agent import (
    AgentAuthError,
    AgentError,
    IncomingTrackData,
    IncomingTrackImage,
    OutgoingAudioTrackOptions,
)

# a client made before install() too
client = FishjamClient(os.environ["FISHJAM_URL"], os.environ["FISHJAM_MANAGEMENT_TOKEN"])

if MODE == "install-after":
    import fishjam_fast

    fishjam_fast.install()

CHUNKS = int(sys.argv[1])


async def main() -> int:
    room = client.create_room()
    agent = client.create_agent(room.id)
    seen = {
        "argv": sys.argv[1:],
        "name": __name__,
        "agent": type(agent).__module__,
        "loop": type(asyncio.get_running_loop()).__module__,
    }
    echoed = 0
    async with agent.connect() as session:
        seen["session"] = type(session).__module__
        track = await session.add_track(
            OutgoingAudioTrackOptions(sample_rate=16000, metadata={"bot": "echo"})
        )
        print("READY", room.id, agent.id, flush=True)
        async for message in session.receive():
            match message:
                case IncomingTrackData(peer_id=peer_id, data=data):
                    assert isinstance(message, agent_module.IncomingTrackData)
                    assert isinstance(message, IncomingTrackData)
                    seen["message"] = type(message).__module__
                    seen["peer"] = peer_id
                    await track.send_chunk(data)
                    echoed += 1
                case IncomingTrackImage():
                    seen["image"] = True
                case _:
                    seen["unmatched"] = type(message).__qualname__
                    break
            if echoed == CHUNKS:
                break
    seen["echoed"] = echoed
    client.delete_peer(room.id, agent.id)
    try:
        async with agent.connect():
            seen["auth"] = "connected with a deleted peer's token"
    except AgentAuthError as error:
        assert isinstance(error, AgentError)
        seen["auth"] = [type(error).__module__, str(error), error.reason]
    print("RESULT", json.dumps(seen), flush=True)
    return 3


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
