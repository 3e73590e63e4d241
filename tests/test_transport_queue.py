"""The receive queue both transports share (fishjam_fast.transport._queue): as compiled
from its one source (Cython's pure-Python mode) and as that source runs uncompiled.
The transports' use of it (pausing and resuming reading at the bounds) is tested over
real sockets in test_transport_hostile.py; here, its own contract."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fishjam_fast.transport import _queue
from tests.conftest import compiled, uncompiled


@pytest.fixture(params=["python", "compiled"])
def queue_class(request: pytest.FixtureRequest) -> Any:
    module = uncompiled(_queue) if request.param == "python" else compiled(_queue)
    return module.BoundedQueue


async def test_messages_come_out_in_order_with_their_bytes_counted(queue_class: Any) -> None:
    queue = queue_class(asyncio.get_running_loop(), 4, 100)
    for i in range(3):
        queue.put(f"m{i}", 10 + i)
    assert len(queue) == 3 and queue.queued_bytes == 33
    assert [queue.take() for _ in range(4)] == ["m0", "m1", "m2", None]
    assert len(queue) == 0 and queue.queued_bytes == 0


async def test_a_waiting_reader_gets_the_message_without_queueing(queue_class: Any) -> None:
    queue = queue_class(asyncio.get_running_loop(), 4, 100)
    reader = queue.wait()
    with pytest.raises(RuntimeError, match="already receiving"):
        queue.wait()
    queue.put("m", 10)
    assert reader.result() == "m" and len(queue) == 0 and queue.queued_bytes == 0


async def test_a_cancelled_reader_loses_no_message(queue_class: Any) -> None:
    queue = queue_class(asyncio.get_running_loop(), 4, 100)
    queue.wait().cancel()
    queue.put("m", 10)
    assert queue.take() == "m"
    queue.wait()  # a new reader may wait after a cancelled one


async def test_the_bounds_count_messages_and_bytes(queue_class: Any) -> None:
    queue = queue_class(asyncio.get_running_loop(), 4, 100)
    for _ in range(4):
        assert not queue.past_bound()
        queue.put(b"x", 1)
    assert queue.at_bound() and not queue.past_bound()  # 4 messages
    queue.put(b"x", 1)
    assert queue.past_bound()
    while len(queue) > 1:  # a quarter of max_queue: reading may resume
        assert not queue.drained()
        queue.take()
    assert queue.drained()
    by_bytes = queue_class(asyncio.get_running_loop(), 100, 100)
    by_bytes.put(b"x", 100)
    assert by_bytes.at_bound() and not by_bytes.past_bound()
    by_bytes.put(b"x", 1)
    assert by_bytes.past_bound() and not by_bytes.drained()
    by_bytes.take()
    assert by_bytes.drained()  # 1 byte left: within a quarter of both bounds


async def test_no_byte_bound_when_made_with_zero(queue_class: Any) -> None:
    queue = queue_class(asyncio.get_running_loop(), 4, 0)
    queue.put(b"x", 1 << 40)
    assert not queue.at_bound()


async def test_the_end_of_the_connection_reaches_a_waiting_reader(queue_class: Any) -> None:
    queue = queue_class(asyncio.get_running_loop(), 4, 100)
    reader = queue.wait()
    queue.fail_reader(ConnectionResetError("gone"))
    with pytest.raises(ConnectionResetError, match="gone"):
        reader.result()
    queue.fail_reader(ConnectionResetError("again"))  # no reader: nothing happens


def test_both_builds_come_from_the_one_source() -> None:
    built = compiled(_queue).BoundedQueue
    assert built.__module__ == "fishjam_fast.transport._queue"
    assert uncompiled(_queue).BoundedQueue is not built
