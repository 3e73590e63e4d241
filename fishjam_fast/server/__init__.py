"""The agent server: dispatch agents from Fishjam's notifications across every core.

A supervisor process places jobs on worker processes (one per core by default), each
running many jobs as tasks on uvloop; see the README, "The agent server"; several
boxes share the rooms through Redis (``redis_url``; the README, "Beyond one box").
Needs the ``server`` extra (``pip install 'fishjam-fast[server]'``). Tooling on top of the
public API: the core never imports it.

    async def entry(job: fishjam_fast.Job) -> None:
        async with job.agent.connect() as session:
            ...

    fishjam_fast.AgentServer(entry, fishjam_url=URL, management_token=T).run()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .agent_server import AgentServer
    from .cluster import FleetUnavailableError
    from .dispatch import DispatchRule, EndJob, OneAgentPerRoom, StartJob
    from .job import Job, JobRequest
    from .options import DEFAULT_DRAIN_TIMEOUT, ServerOptions
    from .supervisor import JobInfo, ServerDrainingError, ServerFullError, WorkerInfo

_MODULES = {
    "AgentServer": "agent_server",
    "FleetUnavailableError": "cluster",
    "DispatchRule": "dispatch",
    "EndJob": "dispatch",
    "OneAgentPerRoom": "dispatch",
    "StartJob": "dispatch",
    "Job": "job",
    "JobRequest": "job",
    "DEFAULT_DRAIN_TIMEOUT": "options",
    "ServerOptions": "options",
    "JobInfo": "supervisor",
    "ServerDrainingError": "supervisor",
    "ServerFullError": "supervisor",
    "WorkerInfo": "supervisor",
}
"""Where each name lives: imported on first use, so ``fishjam_fast.Job`` needs neither
aiohttp nor prometheus_client (the ``server`` extra), and a worker process imports only
what it runs."""


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = [
    "DEFAULT_DRAIN_TIMEOUT",
    "AgentServer",
    "DispatchRule",
    "EndJob",
    "FleetUnavailableError",
    "Job",
    "JobInfo",
    "JobRequest",
    "OneAgentPerRoom",
    "ServerDrainingError",
    "ServerFullError",
    "ServerOptions",
    "StartJob",
    "WorkerInfo",
]
