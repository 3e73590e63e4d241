"""``Job``: what an entrypoint gets; ``JobRequest``: what asks for one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..agent import Agent

__all__ = ["Job", "JobRequest"]


@dataclass(frozen=True)
class JobRequest:
    """A job to run: made by a dispatch rule or by explicit dispatch.

    Attributes:
        room_id: The room the job's agent joins.
        peer_id: The peer whose arrival triggered the job (None for explicit dispatch
            without one).
        metadata: Anything JSON-serialisable, handed to the entrypoint as
            :attr:`Job.metadata`.
        key: The dispatch rule's name for the job (the default rule: the room id):
            at most one job per key runs, and the rule ends it by this key. None for
            explicit dispatch (every request is a new job).
    """

    room_id: str
    peer_id: str | None = None
    metadata: Any = None
    key: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.room_id, str) or not self.room_id:
            raise ValueError(f"room_id must be a non-empty string, not {self.room_id!r}")
        if self.peer_id is not None and not isinstance(self.peer_id, str):
            raise TypeError(f"peer_id must be a string or None, not {self.peer_id!r}")


class Job:
    """One job, as its entrypoint sees it (in a worker process).

    Attributes:
        id: The job's id (unique within the server's run; kept across a restart of
            its worker).
        agent: A :class:`fishjam_fast.Agent` created for this job over REST, ready to
            ``connect()``; the server deletes its peer when the job ends.
        room_id: The room.
        peer_id: The peer whose arrival triggered the job, or None.
        metadata: What the dispatch gave (None by default).
        attempt: 1 for the first run, 2 and more when the job was started again
            after its worker died.
    """

    __slots__ = ("agent", "attempt", "id", "metadata", "peer_id", "room_id")

    def __init__(
        self,
        id: str,
        agent: Agent,
        room_id: str,
        peer_id: str | None,
        metadata: Any,
        attempt: int = 1,
    ) -> None:
        self.id = id
        self.agent = agent
        self.room_id = room_id
        self.peer_id = peer_id
        self.metadata = metadata
        self.attempt = attempt

    def __repr__(self) -> str:
        return (
            f"Job(id={self.id!r}, room_id={self.room_id!r}, peer_id={self.peer_id!r}, "
            f"agent={self.agent.id!r}, attempt={self.attempt})"
        )
