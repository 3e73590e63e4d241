"""The agent server's one kind of background-task set (supervisor, fleet, box)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from fishjam_fast.server.tasks import BackgroundTasks


async def _fail(exc: Exception) -> None:
    await asyncio.sleep(0)
    raise exc


async def test_an_unexpected_failure_is_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = BackgroundTasks("agent server task")
    with caplog.at_level(logging.WARNING, "fishjam_fast.server"):
        task = tasks.spawn(_fail(RuntimeError("reconcile broke")))
        await asyncio.wait([task])
        await asyncio.sleep(0)  # the done callback
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "agent server task failed"
    assert record.exc_info is not None and str(record.exc_info[1]) == "reconcile broke"
    assert tasks.pending() == 0


async def test_an_expected_failure_is_one_warning_line(caplog: pytest.LogCaptureFixture) -> None:
    tasks = BackgroundTasks("Redis update", expected=(ConnectionError,))
    with caplog.at_level(logging.WARNING, "fishjam_fast.server"):
        task = tasks.spawn(_fail(ConnectionError("Connection refused")))
        await asyncio.wait([task])
        await asyncio.sleep(0)
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "Redis update failed: Connection refused"
    assert record.exc_info is None


async def test_finish_waits_for_the_quick_and_cancels_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = BackgroundTasks()
    quick = tasks.spawn(asyncio.sleep(0.01))
    stuck = tasks.spawn(asyncio.sleep(3600))
    assert tasks.pending() == 2
    with caplog.at_level(logging.WARNING, "fishjam_fast.server"):
        await tasks.finish(0.5)
        await asyncio.sleep(0)
    assert quick.done() and not quick.cancelled()
    assert stuck.cancelled()
    assert tasks.pending() == 0
    assert caplog.records == []  # a cancellation is no failure
