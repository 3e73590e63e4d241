"""Shared test configuration."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import pytest

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
    uvloop = None


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every async test runs on asyncio and on uvloop (ids ``[asyncio]``/``[uvloop]``).

    A module can narrow this with ``EVENT_LOOPS = ("asyncio",)``.
    """
    factories: dict[str, Callable[[], Any]] = {"asyncio": asyncio.new_event_loop}
    if uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    wanted = getattr(getattr(item, "module", None), "EVENT_LOOPS", None)
    if wanted is not None:
        factories = {name: factories[name] for name in wanted if name in factories}
    return factories
