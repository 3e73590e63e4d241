"""scripts/_venv.sh: scripts/test.sh and scripts/demo.sh reuse their virtual environment
while nothing it was built from changed, and reinstall when something did.

The scripts' decisions are tested here with a stand-in for the environment's Python
that records each ``pip install`` instead of building (a real build takes a minute or
more per case; CI's first stage runs the real one from a fresh environment on every
run); everything else (the hashing, the stamp, the order) is the real script.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAND_IN = """#!/bin/sh
# records what it was asked to do; fails the install when FAIL_INSTALL is set
echo "$* REQUIRE=$FISHJAM_FAST_REQUIRE_EXTENSION" >> "$(dirname "$0")/../calls"
case "$*" in *"install --quiet --upgrade pip"*) exit 0 ;; esac
[ -z "$FAIL_INSTALL" ]
"""
TEST = ("1", "-c", "constraints-dev.txt", ".[test]")
DEMO = ("0", ".[demo]")


class Tree:
    """A copy of what the package is built from, with scripts/ and a stand-in venv."""

    def __init__(self, root: Path) -> None:
        self.root = root
        ignore = shutil.ignore_patterns("*.so", "*.c", "__pycache__", "*.egg-info", "*.html")
        for name in ("fishjam_fast", "src_ext", "protos", "scripts"):
            shutil.copytree(ROOT / name, root / name, ignore=ignore)
        for name in ("setup.py", "pyproject.toml", "MANIFEST.in", "constraints-dev.txt"):
            shutil.copy2(ROOT / name, root / name)
        python = root / "venv" / "bin" / "python"
        python.parent.mkdir(parents=True)
        python.write_text(STAND_IN)
        python.chmod(0o755)

    def ready(self, *args: str, **env: str) -> list[str]:
        """Runs ``ready_venv venv ARGS``; returns the installs it made."""
        calls = self.root / "venv" / "calls"
        calls.unlink(missing_ok=True)
        environment = {k: v for k, v in os.environ.items() if not k.startswith("FISHJAM_")}
        result = subprocess.run(
            ["bash", "-c", 'source scripts/_venv.sh && ready_venv venv "$@"', "ready", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=60,
            env={**environment, **env},
        )
        if env.get("FAIL_INSTALL"):
            assert result.returncode != 0, result.stderr
        else:
            assert result.returncode == 0, result.stderr
        lines = calls.read_text().splitlines() if calls.exists() else []
        return [line for line in lines if "--upgrade pip" not in line]


def test_a_second_run_reuses_the_environment(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    assert tree.ready(*TEST) == ["-m pip install --quiet -c constraints-dev.txt .[test] REQUIRE=1"]
    assert tree.ready(*TEST) == []
    # the demo's extras on the same sources: installed once, then both are reused
    assert tree.ready(*DEMO) == ["-m pip install --quiet .[demo] REQUIRE=0"]
    assert tree.ready(*TEST) == [] and tree.ready(*DEMO) == []


def test_a_changed_source_reinstalls(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    tree.ready(*TEST)
    changes = [
        lambda: (tree.root / "src_ext" / "_ext.pyx").open("a").write("\n# changed\n"),
        lambda: (tree.root / "fishjam_fast" / "agent.py").open("a").write("\n# changed\n"),
        lambda: (tree.root / "protos" / "new.proto").write_text('syntax = "proto3";\n'),
        lambda: (tree.root / "fishjam_fast" / "enums.py").unlink(),
        lambda: (tree.root / "constraints-dev.txt").open("a").write("\n"),
        lambda: (tree.root / "pyproject.toml").open("a").write("\n"),
        lambda: (tree.root / "setup.py").open("a").write("\n"),
    ]
    for change in changes:
        change()
        assert len(tree.ready(*TEST)) == 1
        assert tree.ready(*TEST) == []  # and reused again after that
    # a changed source invalidates every install made on the old ones
    assert len(tree.ready(*DEMO)) == 1
    (tree.root / "fishjam_fast" / "track.py").open("a").write("\n# changed\n")
    assert len(tree.ready(*DEMO)) == 1 and len(tree.ready(*TEST)) == 1


def test_build_products_and_the_readme_do_not_reinstall(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    tree.ready(*TEST)
    (tree.root / "src_ext" / "_ext.c").write_text("/* generated */\n")
    (tree.root / "fishjam_fast" / "_ext.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\0")
    (tree.root / "fishjam_fast" / "__pycache__").mkdir(exist_ok=True)
    (tree.root / "fishjam_fast" / "__pycache__" / "agent.cpython-311.pyc").write_bytes(b"\0")
    (tree.root / "README.md").write_text("docs\n")
    assert tree.ready(*TEST) == []


def test_a_build_switch_reinstalls(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    tree.ready(*TEST)
    assert len(tree.ready(*TEST, FISHJAM_FAST_DEBUG="1")) == 1
    assert tree.ready(*TEST, FISHJAM_FAST_DEBUG="1") == []
    assert len(tree.ready(*TEST)) == 1  # and back


def test_a_failed_install_is_retried(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    tree.ready(*TEST)
    (tree.root / "fishjam_fast" / "agent.py").open("a").write("\n# changed\n")
    assert len(tree.ready(*TEST, FAIL_INSTALL="1")) == 1
    assert not (tree.root / "venv" / ".fishjam_fast-stamp").exists()
    assert len(tree.ready(*TEST)) == 1  # not taken for done
    assert tree.ready(*TEST) == []
