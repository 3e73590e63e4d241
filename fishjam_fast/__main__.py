"""``python -m fishjam_fast``: the demo, and the local Fishjam server."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Parses the command line and runs the chosen command."""
    parser = argparse.ArgumentParser(prog="python -m fishjam_fast")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="echo agents against a local (or real) Fishjam")
    from . import demo as demo_module

    demo_module.add_arguments(demo)
    commands.add_parser(
        "local",
        help="run the local Fishjam server (see python -m fishjam_fast.local -h)",
        add_help=False,
    )
    args, rest = parser.parse_known_args(argv)
    if args.command == "local":
        from .local.__main__ import main as local_main

        return local_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return demo_module.main(args)


if __name__ == "__main__":
    sys.exit(main())
