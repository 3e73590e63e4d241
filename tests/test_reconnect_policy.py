"""ReconnectPolicy: defaults, the backoff's delays and their jitter bounds, validation."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest

from fishjam_fast import ReconnectPolicy
from fishjam_fast._core.reconnect import reconnect_policy


def _take(policy: ReconnectPolicy, n: int, seed: int = 1) -> list[float]:
    delays = policy.delays(random.Random(seed))
    return [next(delays) for _ in range(n)]


def test_defaults() -> None:
    policy = ReconnectPolicy()
    assert (policy.budget, policy.first_delay, policy.max_delay, policy.jitter) == (
        30.0,
        0.2,
        5.0,
        1.0,
    )
    assert reconnect_policy(True) == policy
    assert reconnect_policy(False) is None
    assert policy.stable_after == 5.0
    assert ReconnectPolicy(stable_after=0).stable_after == 0.0
    custom = ReconnectPolicy(budget=5)
    assert reconnect_policy(custom) is custom and isinstance(custom.budget, float)


def test_without_jitter_delays_double_up_to_the_maximum() -> None:
    policy = ReconnectPolicy(first_delay=0.1, max_delay=1.0, jitter=0)
    assert _take(policy, 7) == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])


@pytest.mark.parametrize("jitter", [0.25, 0.5, 1.0])
def test_jittered_delays_stay_in_bounds_and_spread(jitter: float) -> None:
    policy = ReconnectPolicy(first_delay=0.1, max_delay=0.8, jitter=jitter)
    nominal = [0.1, 0.2, 0.4, 0.8, 0.8, 0.8]
    firsts = []
    for seed in range(2000):
        delays = _take(policy, len(nominal), seed)
        for delay, full in zip(delays, nominal, strict=True):
            assert full * (1 - jitter) <= delay <= full
        firsts.append(delays[0])
    # agents dropped together spread their first attempts over the whole window
    low, high = 0.1 * (1 - jitter), 0.1
    assert min(firsts) < low + 0.05 * (high - low)
    assert max(firsts) > high - 0.05 * (high - low)
    assert len(set(firsts)) == len(firsts)


def test_default_rng_is_random() -> None:
    delays = ReconnectPolicy().delays()
    assert 0 <= next(delays) <= 0.2 and 0 <= next(delays) <= 0.4


def test_zero_first_delay_and_unlimited_budget() -> None:
    assert _take(ReconnectPolicy(first_delay=0, max_delay=0), 3) == [0, 0, 0]
    assert ReconnectPolicy(budget=math.inf).budget == math.inf


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"budget": 0}, ValueError, "budget must be > 0 seconds; to never reconnect"),
        ({"budget": -1}, ValueError, "budget must be a number >= 0"),
        ({"budget": math.nan}, ValueError, "budget must be a number >= 0"),
        ({"budget": "30"}, TypeError, "budget must be a number of seconds, not str"),
        ({"first_delay": -0.1}, ValueError, "first_delay must be a finite number >= 0"),
        ({"first_delay": math.inf}, ValueError, "first_delay must be a finite number >= 0"),
        ({"max_delay": math.inf}, ValueError, "max_delay must be a finite number >= 0"),
        ({"first_delay": 2, "max_delay": 1}, ValueError, r"max_delay \(1.0\) must be >= first"),
        ({"jitter": 1.5}, ValueError, r"jitter must be a fraction in \[0, 1\], got 1.5"),
        ({"jitter": -0.1}, ValueError, r"jitter must be a fraction in \[0, 1\]"),
        ({"jitter": True}, TypeError, r"jitter must be a fraction in \[0, 1\], not bool"),
        ({"max_delay": None}, TypeError, "max_delay must be a number of seconds, not NoneType"),
        ({"stable_after": -1}, ValueError, "stable_after must be a finite number >= 0"),
        ({"stable_after": math.inf}, ValueError, "stable_after must be a finite number >= 0"),
        ({"stable_after": "5"}, TypeError, "stable_after must be a number of seconds, not str"),
    ],
)
def test_bad_values_are_refused(kwargs: dict[str, object], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        ReconnectPolicy(**kwargs)  # type: ignore[arg-type]


def test_frozen_and_bad_reconnect_argument() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ReconnectPolicy().budget = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError, match="reconnect must be True, False or a ReconnectPolicy"):
        reconnect_policy(1)
