"""Runs a module in a child Python in which some top-level modules cannot be imported.

Installing the package without an extra leaves the extra's modules out; this hides
them the same way (a finder first on ``sys.meta_path`` that refuses them), so the tests
of what happens without an extra run in every environment. The second CI environment
has no extras at all, and runs the same tests without anything left to hide.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_BOOTSTRAP = """
import runpy, sys
HIDDEN = set(sys.argv[1].split(","))
class HideModules:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, HideModules())
module = sys.argv[2]
sys.argv = [module, *sys.argv[3:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def run_without(
    hidden: tuple[str, ...], module: str, *args: str, cwd: Path | str = "/", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m module args`` with ``hidden`` (top-level names) impossible to import."""
    return subprocess.run(
        [sys.executable, "-c", _BOOTSTRAP, ",".join(hidden), module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
