"""Running agents on the fastest event loop available."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def has_uvloop() -> bool:
    """True when uvloop is installed (it is a dependency except on Windows)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None, use_uvloop: bool = True) -> T:
    """Runs ``main`` to completion on uvloop, or on asyncio where uvloop is missing.

    Args:
        main: The coroutine to run, e.g. ``main()``.
        debug: asyncio debug mode, as in :func:`asyncio.run`.
        use_uvloop: False to run on the standard asyncio loop.

    Returns:
        What ``main`` returned.
    """
    if use_uvloop and has_uvloop():
        import uvloop

        return uvloop.run(main, debug=debug)
    return asyncio.run(main, debug=debug)
