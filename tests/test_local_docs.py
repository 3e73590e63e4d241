"""The notifications-and-people example of the local Fishjam's documentation runs as
written, on both loops, against the plain SDK's FishjamNotifier."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLACES = (ROOT / "README.md",)
RUN_LINE = "asyncio.run(main())"


def _example() -> tuple[str, Path]:
    """The python block after the ``localnotif-example`` marker, without its last line
    (the test awaits ``main()`` on its own loop instead)."""
    for place in PLACES:
        if not place.exists():
            continue
        pattern = r"<!-- localnotif-example:[^>]*-->\n```python\n(.*?)```"
        match = re.search(pattern, place.read_text(), re.S)
        if match:
            code = match.group(1).rstrip()
            assert code.endswith(RUN_LINE), "the example should end by running main()"
            return code.removesuffix(RUN_LINE), place
    raise AssertionError("no localnotif-example block in README.md")


async def test_example_greets_the_person_and_sees_it_leave(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, place = _example()
    namespace: dict[str, Any] = {"__name__": "localnotif_example"}
    exec(compile(code, str(place), "exec"), namespace)
    await namespace["main"]()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    hello, goodbye = lines
    assert hello.startswith("hello, ") and goodbye == "goodbye, " + hello.removeprefix("hello, ")
