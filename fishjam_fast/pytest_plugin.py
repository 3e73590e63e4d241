"""pytest plugin (entry point ``pytest11``): the ``local_fishjam`` fixture.

pytest loads this module in every run of an environment where fishjam_fast is
installed, the application's own test runs included, so it imports nothing beyond
pytest (and pytest-asyncio when present) at load: the local server and aiohttp (the
``local`` extra) are imported when a test uses the fixture, which says what to install
if they are missing.

``local_fishjam`` is an async fixture yielding a started
:class:`~fishjam_fast.local.LocalFishjam` on a free port, stopped after the test; it
runs on the test's event loop, so it needs pytest-asyncio (``asyncio_mode = "auto"``, or
mark the test ``@pytest.mark.asyncio``). Without pytest-asyncio the fixture fails with
a message saying so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ._extras import install_hint

LOCAL_EXTRA = install_hint("local")
"""What installs the local Fishjam server's dependencies."""

pytest_asyncio: Any
try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - depends on the user's environment
    pytest_asyncio = None


def _server_class() -> Any:
    """``LocalFishjam``, imported now; a test failure naming the extra if it cannot be."""
    try:
        from .local.server import LocalFishjam
    except ImportError as exc:
        missing = str(exc)
    else:
        return LocalFishjam
    pytest.fail(  # outside the except block: no chained ImportError in the report
        f"the local_fishjam fixture needs the local Fishjam server ({missing}): {LOCAL_EXTRA}",
        pytrace=False,
    )


async def _serve() -> AsyncIterator[Any]:
    async with _server_class()() as fj:
        yield fj


if pytest_asyncio is not None:
    local_fishjam = pytest_asyncio.fixture(_serve, name="local_fishjam")
else:  # pragma: no cover

    @pytest.fixture(name="local_fishjam")
    def local_fishjam() -> None:
        pytest.fail("the local_fishjam fixture needs pytest-asyncio (pip install pytest-asyncio)")
