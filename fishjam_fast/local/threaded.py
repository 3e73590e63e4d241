"""A LocalFishjam on its own event loop in a background thread, for synchronous code.

Useful when the code under test is synchronous (the plain SDK's ``FishjamClient``), or
runs its own loop (uvloop benchmarks) that the server should not share::

    with ThreadedLocalFishjam() as t:
        room = t.call(t.server.create_room)
        peer = t.call(t.server.add_agent, room, 24000)
        FishjamClient(t.url, t.management_token) ...
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from .server import LocalFishjam

T = TypeVar("T")


class ThreadedLocalFishjam:
    """Runs a :class:`LocalFishjam` in a daemon thread; :meth:`call` runs code on its loop."""

    def __init__(self, port: int = 0, **options: Any) -> None:
        """Configure (the thread starts on ``__enter__``).

        Args:
            port: As for :class:`LocalFishjam`.
            **options: Keyword options of :class:`LocalFishjam`.
        """
        self.server = LocalFishjam(port, **options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The server's URL."""
        return self.server.url

    @property
    def management_token(self) -> str:
        """The server's management token."""
        return self.server.management_token

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 30.0, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` on the server's loop and return its result
        (awaited, if it is a coroutine).

        Args:
            fn: A function or coroutine function (e.g. ``t.server.add_agent``).
            *args: Its arguments.
            timeout: Seconds to wait for the result.
            **kwargs: Its keyword arguments.

        Returns:
            What ``fn`` returned.

        Raises:
            RuntimeError: If the server is not running.
            TimeoutError: If it took longer than ``timeout``.
        """
        if self._loop is None:
            raise RuntimeError("ThreadedLocalFishjam is not running")

        async def run() -> Any:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def __enter__(self) -> ThreadedLocalFishjam:
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def main() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.server.start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.server.stop())
            loop.close()

        self._thread = threading.Thread(target=main, name="local-fishjam", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        self._loop = loop
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and self._thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(30)
