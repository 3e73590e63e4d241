"""Placement: which worker takes the next job, and how many jobs the workers hold.

A job goes to the ready worker with the fewest jobs (ties: the lowest CPU load it
reported); a worker at ``max_jobs`` jobs or ``max_load`` CPU (fraction of a core) is
full. Job counts lead because they change at once when a job is placed, whereas the CPU
load is a moving average reported every ``report_interval``: a burst placed by CPU
alone would all land on the worker that looked idle half a second ago.
"""

from __future__ import annotations

from collections.abc import Iterable

from .options import ServerOptions
from .records import WorkerInfo

__all__ = ["capacity", "least_loaded"]


def least_loaded(workers: Iterable[WorkerInfo], options: ServerOptions) -> WorkerInfo | None:
    """The worker the next job goes to, or None when every worker is full (or none is
    ready)."""
    best: WorkerInfo | None = None
    for worker in workers:
        if not worker.ready or worker.process is None:
            continue
        if len(worker.jobs) >= options.max_jobs or worker.cpu >= options.max_load:
            continue
        if best is None or (len(worker.jobs), worker.cpu) < (len(best.jobs), best.cpu):
            best = worker
    return best


def capacity(workers: Iterable[WorkerInfo], options: ServerOptions) -> int:
    """The jobs the ready workers could hold at once (``max_jobs`` each)."""
    return sum(options.max_jobs for w in workers if w.ready and w.process)
