"""The on_state_change callbacks' one kind (fishjam_fast._callbacks), which the agent
session's lifecycle and the notifier share."""

from __future__ import annotations

import pytest

from fishjam_fast._callbacks import Callbacks


def test_callbacks_run_in_order_and_one_that_raises_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    callbacks: Callbacks[int] = Callbacks()
    seen: list[tuple[str, int]] = []

    def broken(value: int) -> None:
        raise ValueError("bug in the application")

    callbacks.add(lambda v: seen.append(("first", v)))
    callbacks.add(broken)
    callbacks.add(lambda v: seen.append(("last", v)))
    callbacks.call(7, "a callback of agent %s failed", "a1")
    assert seen == [("first", 7), ("last", 7)]
    assert "a callback of agent a1 failed" in caplog.text
    assert "bug in the application" in caplog.text


def test_unregister_removes_once_and_a_call_in_progress_keeps_its_snapshot() -> None:
    callbacks: Callbacks[str] = Callbacks()
    seen: list[str] = []
    unregister_second = None

    def first(value: str) -> None:
        seen.append(f"first {value}")
        assert unregister_second is not None
        unregister_second()

    callbacks.add(first)
    unregister_second = callbacks.add(lambda v: seen.append(f"second {v}"))
    callbacks.call("a", "failed")
    callbacks.call("b", "failed")
    assert seen == ["first a", "second a", "first b"]
    unregister_second()  # a second time: nothing to remove, no error
