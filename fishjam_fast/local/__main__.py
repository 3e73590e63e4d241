"""``python -m fishjam_fast.local``: run a local Fishjam server until Ctrl-C.

Prints ``URL <url>`` and ``MANAGEMENT_TOKEN <token>`` lines (then flushes), so scripts
can read them; ``--seconds N`` stops it after N seconds. ``SIGHUP`` restarts it as a
deploy would (every agent socket dropped, the port closed and reopened; rooms, peers and
tokens kept), as does ``POST /local/restart``. ``--webhook-secret S`` signs webhooks.

A running server's simulated people, from another shell::

    python -m fishjam_fast.local person join ROOM_ID --url URL --token TOKEN \
        [--speech "Hello there" | --tone SECONDS] [--metadata '{"name": "Ann"}']
    python -m fishjam_fast.local person leave ROOM_ID PEER_ID --url URL --token TOKEN

``join`` prints ``PEER_ID <id>`` and ``TRACK_ID <id>``; both exit 1 with the server's
error on stderr when it refuses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import signal
import sys
import urllib.error
import urllib.request
from typing import Any

from .._extras import EXTRAS, install_hint, missing_modules
from ..runner import run


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
    p.add_argument(
        "--webhook-secret",
        default=None,
        help="sign webhook bodies (header x-fishjam-signature-256: sha256=<HMAC-SHA256>)",
    )
    p.epilog = "Simulated people of a running server: python -m fishjam_fast.local person --help"
    return p


def _person_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fishjam_fast.local person",
        description="Make a simulated person join or leave a room of a running local Fishjam.",
    )
    sub = p.add_subparsers(dest="action", required=True)
    join = sub.add_parser("join", help="a person joins (prints PEER_ID and TRACK_ID)")
    join.add_argument("room_id")
    leave = sub.add_parser("leave", help="a person leaves")
    leave.add_argument("room_id")
    leave.add_argument("peer_id")
    for q in (join, leave):
        q.add_argument("--url", default="http://127.0.0.1:5002", help="the server's URL")
        q.add_argument("--token", required=True, help="the server's management token")
    said = join.add_mutually_exclusive_group()
    said.add_argument("--speech", default=None, help="say this text")
    said.add_argument("--tone", type=float, default=None, help="play a 440 Hz tone, seconds")
    join.add_argument("--metadata", default=None, help="peer metadata, a JSON object")
    return p


def _person(argv: list[str]) -> int:
    """``person join|leave``: the control routes of a running server, over HTTP."""
    args = _person_parser().parse_args(argv)
    if args.action == "join":
        audio: dict[str, Any] | None = None
        if args.speech is not None:
            audio = {"source": "speech", "text": args.speech}
        elif args.tone is not None:
            audio = {"source": "tone", "seconds": args.tone}
        try:
            metadata = json.loads(args.metadata) if args.metadata is not None else None
        except ValueError as exc:
            print(f"--metadata is not JSON: {exc}", file=sys.stderr)
            return 2
        method, path = "POST", f"/local/room/{args.room_id}/person"
        body: Any = {"audio": audio, "metadata": metadata}
    else:
        method, path = "DELETE", f"/local/room/{args.room_id}/person/{args.peer_id}"
        body = None
    request = urllib.request.Request(
        args.url.rstrip("/") + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {args.token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        print(f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{method} {path}: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    print(f"PEER_ID {answer['peer_id']}", flush=True)
    if args.action == "join":
        print(f"TRACK_ID {answer['track_id']}", flush=True)
    return 0


async def _run(args: argparse.Namespace) -> None:
    from .server import LocalFishjam  # needs aiohttp: main() checked it is there

    fj = LocalFishjam(
        args.port,
        management_token=args.token,
        heartbeat=args.heartbeat or None,
        record_chunks=not args.no_record,
        record_requests=not args.no_record,
        webhook_secret=args.webhook_secret,
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
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["person"]:
        return _person(argv[1:])
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
            # on uvloop where installed: a burst of 500 agent sockets and REST calls
            # costs it about half the CPU of asyncio's loop
            run(_run(args))
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
