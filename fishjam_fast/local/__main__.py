"""``python -m fishjam_fast.local``: run a local Fishjam server until Ctrl-C.

Prints ``URL <url>`` and ``MANAGEMENT_TOKEN <token>`` lines (then flushes), so scripts
can read them; ``--seconds N`` stops it after N seconds. ``SIGHUP`` restarts it as a
deploy would (every agent socket dropped, the port closed and reopened; rooms, peers and
tokens kept), as does ``POST /local/restart``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import signal
import sys

from .._extras import EXTRAS, install_hint, missing_modules


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fishjam_fast.local", description="Run a local Fishjam server."
    )
    p.add_argument("--port", type=int, default=5002, help="port on 127.0.0.1 (0: any free)")
    p.add_argument("--token", default=None, help="management token (default: random)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--heartbeat", type=float, default=30.0, help="ping interval, s (0: off)")
    p.add_argument(
        "--no-record", action="store_true", help="keep counts only, not chunk bodies or requests"
    )
    return p


async def _run(args: argparse.Namespace) -> None:
    from .server import LocalFishjam  # needs aiohttp: main() checked it is there

    fj = LocalFishjam(
        args.port,
        management_token=args.token,
        heartbeat=args.heartbeat or None,
        record_chunks=not args.no_record,
        record_requests=not args.no_record,
    )
    async with fj:
        with contextlib.suppress(NotImplementedError, AttributeError):  # no SIGHUP: Windows
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, fj.restart_soon)
        print(f"URL {fj.url}", flush=True)
        print(f"MANAGEMENT_TOKEN {fj.management_token}", flush=True)
        if args.seconds is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(args.seconds)


def main(argv: list[str] | None = None) -> int:
    """Run the server.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 2, with one line on stderr saying why, without the ``local``
        extra or when the port is in use.
    """
    args = _parser().parse_args(argv)  # --help works in any installation
    extra, needs = EXTRAS["local"]
    missing = missing_modules(needs)
    if missing:
        print(
            f"python -m fishjam_fast.local needs {', '.join(missing)}: {install_hint(extra)}",
            file=sys.stderr,
        )
        return 2
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_run(args))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        # a usage problem, not a crash: one line, no traceback
        print(
            f"python -m fishjam_fast.local: port {args.port} on 127.0.0.1 is in use "
            f"(another local Fishjam?): stop what holds it, or choose another port with "
            f"--port N (--port 0: any free port)",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
