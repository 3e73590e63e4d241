"""``python -m fishjam_fast run``: an unchanged plain-SDK program, run fast.

``python -m fishjam_fast run app.py [args]`` and ``python -m fishjam_fast run -m module
[args]`` run the program as ``python app.py [args]`` and ``python -m module [args]``
would (``sys.argv``, ``sys.path[0]``, ``__name__ == "__main__"``, the exit status), with
two things done first: :func:`fishjam_fast.install` (the plain SDK makes fishjam_fast's
objects) and uvloop as the event loop policy (``asyncio.run`` then runs on uvloop).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import runpy
import sys
import warnings

from ._dropin import install
from .runner import has_uvloop

USAGE = """\
usage: python -m fishjam_fast run app.py [args ...]
       python -m fishjam_fast run -m module [args ...]

Runs a program written for the plain Fishjam SDK (fishjam-server-sdk) unchanged, with
fishjam_fast.install() done first (fishjam.agent and FishjamClient.create_agent make
fishjam_fast's objects) and uvloop as the event loop where it is installed. The program
sees the arguments after app.py (or the module) in sys.argv, as under python itself;
its exit status is this command's.
"""


def main(argv: list[str]) -> int:
    """Runs the program ``argv`` names; returns 0 when it ends without raising.

    Its ``SystemExit`` (``sys.exit(status)``) and uncaught exceptions go through, as
    when python runs it: the exit status is the program's.

    Returns:
        0, or 2 for a bad command line (the usage is printed), 1 for a module that
        does not exist (as python says it).
    """
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE, end="")
        return 0
    module: str | None = None
    if argv[:1] == ["-m"]:
        if len(argv) < 2:
            return _usage_error("-m needs a module name")
        module, args = argv[1], argv[2:]
    elif not argv or argv[0].startswith("-"):
        return _usage_error(f"unknown option {argv[0]}" if argv else "no program given")
    else:
        path, args = argv[0], argv[1:]
        if not os.path.exists(path):
            print(
                f"python -m fishjam_fast run: cannot open {path!r}: no such file", file=sys.stderr
            )
            return 2
    if module is not None and _find_spec(module) is None:
        print(f"python -m fishjam_fast run: no module named {module!r}", file=sys.stderr)
        return 1
    try:
        install()
    except ImportError as exc:
        print(f"python -m fishjam_fast run: {exc}", file=sys.stderr)
        return 2
    _use_uvloop()
    if module is not None:
        sys.argv = [module, *args]  # run_module puts the module's file in argv[0]
        # sys.path[0] stays the working directory, as under `python -m`
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        sys.argv = [path, *args]
        sys.path[0] = os.path.dirname(os.path.abspath(path))  # as under `python app.py`
        runpy.run_path(path, run_name="__main__")
    return 0


def _usage_error(message: str) -> int:
    print(USAGE.split("\n\n")[0], file=sys.stderr)
    print(f"python -m fishjam_fast run: error: {message}", file=sys.stderr)
    return 2


def _find_spec(module: str) -> object:
    try:
        return importlib.util.find_spec(module)
    except ImportError:  # a parent package that does not exist
        return None


def _use_uvloop() -> None:
    """uvloop as the policy: every loop asyncio.run (or new_event_loop) makes is uvloop."""
    if not has_uvloop():
        return  # (Windows: asyncio's loop)
    import uvloop

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # policies, from Python 3.14
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
