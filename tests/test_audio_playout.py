"""The playout clock (fishjam_fast._core.playout), driven with made-up times: as compiled from
its one source (Cython's pure-Python mode) and as that source runs uncompiled."""

from __future__ import annotations

from pathlib import Path

import pytest

from fishjam_fast._core import playout
from fishjam_fast._core.playout import PlayoutClock
from tests.conftest import compiled, uncompiled


@pytest.fixture(params=["python", "compiled"], autouse=True)
def _implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs on both builds of the clock (the module's PlayoutClock name is
    switched)."""
    module = uncompiled(playout) if request.param == "python" else compiled(playout)
    monkeypatch.setitem(globals(), "PlayoutClock", module.PlayoutClock)


def test_both_builds_come_from_the_one_source() -> None:
    """The compiled clock is a cdef class built from _core/playout.py (no twin in src_ext)."""
    built = compiled(playout).PlayoutClock
    assert built.__module__ == "fishjam_fast._core.playout"
    assert uncompiled(playout).PlayoutClock is not built
    with pytest.raises(AttributeError):  # C fields only: the declared three
        built().elsewhere = 1.0  # type: ignore[attr-defined]
    src_ext = Path(__file__).resolve().parents[1] / "src_ext"
    assert not (src_ext / "playout.pyx").exists()


def test_idle_clock_holds_nothing() -> None:
    clock = PlayoutClock()
    assert clock.queued(0.0) == 0.0 and clock.queued(1e6) == 0.0
    assert clock.clear(5.0) == 0.0
    assert clock.wait_before(0.02, 0.5, 5.0) == 0.0


def test_audio_plays_in_real_time_from_arrival() -> None:
    clock = PlayoutClock()
    clock.add(1.0, now=10.0)
    assert clock.queued(10.0) == 1.0
    assert clock.queued(10.25) == pytest.approx(0.75)
    assert clock.queued(11.0) == 0.0 and clock.queued(12.0) == 0.0


def test_audio_sent_while_queued_plays_after_the_queue() -> None:
    clock = PlayoutClock()
    clock.add(1.0, now=10.0)
    clock.add(0.5, now=10.5)  # 0.5 s still queued: ends at 11.5
    assert clock.ends_at == pytest.approx(11.5)
    assert clock.queued(10.5) == pytest.approx(1.0)


def test_audio_sent_after_a_gap_starts_at_its_arrival() -> None:
    clock = PlayoutClock()
    clock.add(1.0, now=10.0)
    clock.add(0.5, now=20.0)  # idle since 11.0: plays from 20.0
    assert clock.ends_at == pytest.approx(20.5)
    assert clock.sent_seconds == pytest.approx(1.5)


def test_clear_drops_what_is_queued_and_returns_it() -> None:
    clock = PlayoutClock()
    clock.add(2.0, now=0.0)
    assert clock.clear(0.5) == pytest.approx(1.5)
    assert clock.queued(0.5) == 0.0
    assert clock.dropped_seconds == pytest.approx(1.5)
    clock.add(0.1, now=0.6)  # after the interrupt: plays normally
    assert clock.queued(0.6) == pytest.approx(0.1)
    assert clock.clear(1.0) == 0.0  # played out already


def test_wait_before_keeps_the_queue_within_the_limit() -> None:
    clock = PlayoutClock()
    for _ in range(25):
        assert clock.wait_before(0.02, 0.5, 0.0) == 0.0
        clock.add(0.02, 0.0)
    assert clock.queued(0.0) == pytest.approx(0.5)
    # full: the next chunk fits once one chunk has played
    assert clock.wait_before(0.02, 0.5, 0.0) == pytest.approx(0.02)
    assert clock.wait_before(0.02, 0.5, 0.02) == pytest.approx(0.0, abs=1e-9)


def test_a_piece_longer_than_the_limit_waits_for_an_empty_queue() -> None:
    clock = PlayoutClock()
    assert clock.wait_before(2.0, 0.5, 0.0) == 0.0  # empty: it may go
    clock.add(2.0, 0.0)
    assert clock.wait_before(2.0, 0.5, 1.0) == pytest.approx(1.0)


def test_refill_wait_wakes_once_for_several_chunks() -> None:
    clock = PlayoutClock()
    clock.add(0.5, 0.0)
    wait = clock.refill_wait(0.02, 0.5, 0.0)
    # room for the chunk and a quarter of the limit: 0.145 s
    assert wait == pytest.approx(0.145)
    assert clock.queued(wait) + 0.02 + 0.125 == pytest.approx(0.5)
    assert clock.refill_wait(0.02, 0.5, 1.0) == 0.0  # room now: no wait
    # a chunk plus a quarter over the limit: wait for an empty queue, not forever
    clock.add(0.02, 2.0)
    assert clock.refill_wait(0.05, 0.03, 2.0) == pytest.approx(0.02)
    assert clock.refill_wait(0.02, 0.03, 2.0) == pytest.approx(0.0175)


def test_repr_names_the_state() -> None:
    clock = PlayoutClock()
    clock.add(1.0, 2.0)
    assert repr(clock) == "PlayoutClock(ends_at=3.0, sent_seconds=1.0, dropped_seconds=0.0)"
