"""Helpers of the agent server tests: waits with deadlines, metrics, the test apps' path."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx

APPS = str(Path(__file__).parent)
"""The directory of ``server_apps.py`` (put on sys.path: the workers inherit it)."""


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Waits until ``predicate()`` holds; returns the seconds it took.

    Raises:
        AssertionError: It did not hold within ``timeout``.
    """
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def metrics(url: str) -> dict[str, float]:
    """The server's /metrics as ``{"name{labels}": value}`` (samples only)."""
    async with httpx.AsyncClient() as client:
        response = await client.get(url + "/metrics")
    response.raise_for_status()
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples
