"""The README's local-server example runs as written, on both loops, and its loop ends."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
RUN_LINE = "asyncio.run(main())"


def _local_example() -> str:
    """The python block after the ``local-example`` marker, without its last line
    (``asyncio.run(main())``: the test awaits ``main()`` on its own loop instead)."""
    match = re.search(r"<!-- local-example:[^>]*-->\n```python\n(.*?)```", README.read_text(), re.S)
    assert match, "the README lost its local-example block"
    code = match.group(1).rstrip()
    assert code.endswith(RUN_LINE), "the example should end by running main()"
    return code.removesuffix(RUN_LINE)


async def test_readme_local_example_runs_and_ends(capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(_local_example(), str(README), "exec"), namespace)
    await namespace["main"]()
    # every chunk the peer spoke reached the agent, and every echo reached the server
    assert capsys.readouterr().out == "echoed 50 chunks; the server got 50\n"
