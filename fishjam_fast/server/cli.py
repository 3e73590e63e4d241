"""``python -m fishjam_fast serve app:entry ...``: the agent server from the command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from .options import DEFAULT_DRAIN_TIMEOUT, ServerOptions

__all__ = ["add_arguments", "main"]


def _workers(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'auto' or a number, not {value!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``serve`` command's arguments."""
    defaults = ServerOptions()
    parser.add_argument(
        "entrypoint", help="the job entrypoint, MODULE:FUNCTION (async def entry(job))"
    )
    parser.add_argument(
        "--fishjam-url",
        help="the Fishjam ID or URL (default: start a local Fishjam, for development)",
    )
    parser.add_argument(
        "--management-token",
        help="the management token (better: the FISHJAM_MANAGEMENT_TOKEN environment "
        "variable, which process listings do not show)",
    )
    parser.add_argument(
        "--prewarm",
        help="MODULE:FUNCTION run once per worker (default: "
        "the entrypoint module's prewarm, if any)",
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        default="auto",
        help="worker processes, or auto (one per usable core; default)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=defaults.metrics_port,
        help=f"HTTP port of /metrics, /health, POST /dispatch (default "
        f"{defaults.metrics_port}; 0: any free port)",
    )
    parser.add_argument(
        "--metrics-host",
        default=defaults.metrics_host,
        help="address the HTTP port binds (default 127.0.0.1)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=DEFAULT_DRAIN_TIMEOUT,
        help=f"seconds running jobs get to end on SIGTERM (default {DEFAULT_DRAIN_TIMEOUT:g})",
    )
    parser.add_argument(
        "--max-jobs",
        type=int,
        default=defaults.max_jobs,
        help=f"most jobs per worker (default {defaults.max_jobs})",
    )
    parser.add_argument(
        "--max-load",
        type=float,
        default=defaults.max_load,
        help=f"a worker at this CPU load takes no new job (default {defaults.max_load})",
    )
    parser.add_argument(
        "--when-full",
        choices=("wait", "refuse"),
        default=defaults.when_full,
        help="when every worker is full: wait (up to --job-wait-timeout) or refuse",
    )
    parser.add_argument(
        "--job-wait-timeout",
        type=float,
        default=defaults.job_wait_timeout,
        help=f"seconds a job may wait for room (default {defaults.job_wait_timeout:g})",
    )
    parser.add_argument(
        "--source",
        choices=("socket", "webhook", "none"),
        default="socket",
        help="jobs from the notification socket (default), from webhooks POSTed to "
        "/webhook on the HTTP port (secret: FISHJAM_FAST_WEBHOOK_SECRET), or explicit "
        "dispatch only",
    )
    parser.add_argument(
        "--reconcile-interval",
        type=float,
        default=None,
        help="seconds between REST reconciliations (default: at start and after a "
        "notification gap only)",
    )
    parser.add_argument(
        "--redis",
        default=None,
        help="redis://host:6379/0: boxes running with the same Redis share the rooms "
        "(one agent per room across them, failover, handover on SIGTERM; default: this "
        "box alone)",
    )
    parser.add_argument(
        "--lease-ttl",
        type=float,
        default=defaults.lease_ttl,
        help=f"with --redis: seconds a dead or cut-off box keeps its rooms (default "
        f"{defaults.lease_ttl:g})",
    )
    parser.add_argument(
        "--redis-prefix",
        default=defaults.redis_prefix,
        help=f"with --redis: the prefix of every key (default {defaults.redis_prefix})",
    )
    parser.add_argument(
        "--on-shutdown",
        choices=("handover", "drain"),
        default=defaults.on_shutdown,
        help="with --redis, on SIGTERM: hand the rooms over to the other boxes at once "
        "(default), or drain: let running jobs end within --drain-timeout here (their "
        "leases kept), then hand the rest over",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")


def main(args: argparse.Namespace) -> int:
    """Runs the server until SIGTERM/SIGINT; returns the exit status."""
    from .agent_server import AgentServer

    level = getattr(logging, str(args.log_level).upper(), None)
    if not isinstance(level, int):
        print(f"--log-level: unknown level {args.log_level!r}", file=sys.stderr)
        return 2
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # as uvicorn does: the working directory's modules are importable as entrypoints
    # (here and, through the inherited sys.path, in the workers)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        server = AgentServer(
            args.entrypoint,
            fishjam_url=args.fishjam_url,
            management_token=args.management_token,
            prewarm=args.prewarm,
            source=args.source,
            log_level=level,
            workers=args.workers,
            metrics_port=args.metrics_port,
            metrics_host=args.metrics_host,
            drain_timeout=args.drain_timeout,
            max_jobs=args.max_jobs,
            max_load=args.max_load,
            when_full=args.when_full,
            job_wait_timeout=args.job_wait_timeout,
            dispatch_token=os.environ.get("FISHJAM_FAST_DISPATCH_TOKEN") or None,
            webhook_secret=os.environ.get("FISHJAM_FAST_WEBHOOK_SECRET") or None,
            reconcile_interval=args.reconcile_interval,
            redis_url=args.redis,
            lease_ttl=args.lease_ttl,
            redis_prefix=args.redis_prefix,
            on_shutdown=args.on_shutdown,
        )
    except (ValueError, TypeError) as exc:
        print(f"python -m fishjam_fast serve: {exc}", file=sys.stderr)
        return 2
    return server.run()
