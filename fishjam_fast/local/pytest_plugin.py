"""pytest plugin (entry point ``pytest11``): the ``local_fishjam`` fixture.

``local_fishjam`` is an async fixture yielding a started :class:`LocalFishjam` on a free
port, stopped after the test; it runs on the test's event loop, so it needs
pytest-asyncio (``asyncio_mode = "auto"``, or mark the test ``@pytest.mark.asyncio``).
Without pytest-asyncio the fixture fails with a message saying so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest_asyncio: Any
try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - depends on the user's environment
    pytest_asyncio = None


async def _serve() -> AsyncIterator[Any]:
    from .server import LocalFishjam

    async with LocalFishjam() as fj:
        yield fj


if pytest_asyncio is not None:
    local_fishjam = pytest_asyncio.fixture(_serve, name="local_fishjam")
else:  # pragma: no cover

    @pytest.fixture(name="local_fishjam")
    def local_fishjam() -> None:
        pytest.fail("the local_fishjam fixture needs pytest-asyncio (pip install pytest-asyncio)")
