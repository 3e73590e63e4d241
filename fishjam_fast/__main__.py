"""``python -m fishjam_fast``: the demo, the local Fishjam server, ``serve`` (the agent
server: ``fishjam_fast.server``), and ``run`` (a plain-SDK program made fast:
``fishjam_fast._launch``).

The demo and the local server need optional dependencies (extras). Without them the
command says what to install and exits with status 2; ``--help`` prints the help in any
installation (its epilog names the extras) and, without them, exits with status 2 too,
so a script learns that the installation is incomplete.
"""

from __future__ import annotations

import argparse
import sys

from ._extras import EXTRAS, install_hint, missing_modules


def _parser() -> argparse.ArgumentParser:
    from . import demo as demo_module  # imports nothing optional at load

    parser = argparse.ArgumentParser(
        prog="python -m fishjam_fast",
        epilog=f"the demo needs {install_hint('demo')}; the local server {install_hint('local')}",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="a fleet of echo agents, fishjam_fast beside the plain SDK, on a local Fishjam",
        epilog=f"needs {install_hint('demo')}",
    )
    demo_module.add_arguments(demo)
    from .server import cli as serve_cli  # imports nothing optional at load

    serve = commands.add_parser(
        "serve",
        help="the agent server: run an entrypoint for every job, on every core",
        epilog=f"needs {install_hint('server')}",
    )
    serve_cli.add_arguments(serve)
    commands.add_parser(
        "local",
        help="run the local Fishjam server (see python -m fishjam_fast local -h)",
        add_help=False,
    )
    commands.add_parser(
        "run",
        help="run a plain-SDK program unchanged, made fast: run app.py [args] or "
        "run -m module [args] (see python -m fishjam_fast run -h)",
        add_help=False,
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parses the command line and runs the chosen command; returns the exit status."""
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["run"]:
        # before argparse: everything after the program belongs to the program
        from ._launch import main as run_main

        return run_main(argv[1:])
    parser = _parser()
    try:
        args, rest = parser.parse_known_args(argv)
    except SystemExit as exit_:
        # --help printed the help: status 2 while the commands' extras are missing
        if exit_.code == 0 and missing_modules(EXTRAS["demo"][1]):
            return 2
        raise
    extra, needs = EXTRAS[args.command]
    if args.command == "demo":
        if args.fishjam_id:
            needs = ()  # a real Fishjam: no local server
        if args.chart is not None:
            needs += ("matplotlib",)
        if args.server:
            extra, needs = EXTRAS["serve"]
    missing = missing_modules(needs)
    if missing:
        print(
            f"python -m fishjam_fast {args.command} needs {', '.join(missing)}: "
            f"{install_hint(extra)}",
            file=sys.stderr,
        )
        return 2
    if args.command == "serve":
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        from .server import cli as serve_cli

        return serve_cli.main(args)
    if args.command == "local":
        from .local.__main__ import main as local_main

        return local_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    from . import demo as demo_module

    return demo_module.main(args)


if __name__ == "__main__":
    sys.exit(main())
