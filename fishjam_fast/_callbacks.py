"""Synchronous callbacks registered by the application: state-change listeners.

A leaf (it imports only :mod:`.logs`): the agent session's lifecycle and the notifier
both keep their ``on_state_change`` callbacks in one :class:`Callbacks`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from .logs import logger

T = TypeVar("T")


class Callbacks(Generic[T]):
    """Callbacks called in registration order with one value each, on the loop."""

    __slots__ = ("_callbacks",)

    def __init__(self) -> None:
        self._callbacks: list[Callable[[T], object]] = []

    def add(self, callback: Callable[[T], object]) -> Callable[[], None]:
        """Registers ``callback``; returns a function that unregisters it (once)."""
        self._callbacks.append(callback)

        def unregister() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unregister

    def call(self, value: T, failed: str, *args: object) -> None:
        """Calls each callback with ``value``; one that raises is logged
        (``logger.exception(failed, *args)``) and the rest are still called.

        The callbacks registered when it starts are called, even one unregistered
        by another meanwhile."""
        for callback in tuple(self._callbacks):
            try:
                callback(value)
            except Exception:
                logger.exception(failed, *args)
