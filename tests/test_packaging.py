"""What gets packaged: a failed compile never ships an old extension, and the sdist holds
what the package is built from (tests are left out on purpose, see MANIFEST.in).

Both build from a copy of the source tree, so the checkout is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")


pytestmark = pytest.mark.slow  # each builds the package from a copy of the tree


def _source_copy(dest: Path) -> Path:
    """The files a build reads (and examples/, which the sdist must leave out); the
    generated C comes along (with its time stamp, so Cython does not translate again)
    when an earlier build left it."""
    tree = dest / "src"
    ignore = shutil.ignore_patterns("*.so", "*.pyd", "__pycache__", "*.egg-info", "*.html")
    for name in ("fishjam_fast", "src_ext", "protos", "examples"):
        shutil.copytree(ROOT / name, tree / name, ignore=ignore)
    for name in ("setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, tree / name)
    return tree


def _wheel(tree: Path, dist: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``pip wheel`` of the copied tree into ``dist``, with this environment's build tools."""
    return subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(dist), str(tree)],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip


def test_a_failed_compile_removes_the_stale_extension(tmp_path: Path) -> None:
    tree = _source_copy(tmp_path)
    stale_build = tree / "build" / "lib.old" / "fishjam_fast" / f"_ext{SUFFIX}"
    stale_inplace = tree / "fishjam_fast" / f"_ext{SUFFIX}"
    for stale in (stale_build, stale_inplace):
        stale.parent.mkdir(parents=True, exist_ok=True)
        stale.write_bytes(b"an extension from an earlier build")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FISHJAM_FAST_")}
    env["CC"] = "false"  # every compile fails
    result = _wheel(tree, tmp_path / "dist", env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "building the fishjam_fast extension failed" in output
    assert not stale_build.exists() and not stale_inplace.exists()
    (wheel,) = (tmp_path / "dist").glob("fishjam_fast-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "fishjam_fast/_codec_py.py" in names
    assert not [n for n in names if n.endswith((".so", ".pyd"))], names


def test_a_module_an_earlier_build_left_in_build_lib_is_not_packaged(tmp_path: Path) -> None:
    # a module moved since (_playout.py went into _core/) or deleted, and a compiled
    # module no extension of this build makes: setuptools packages all of build/lib
    tree = _source_copy(tmp_path)
    lib = tree / "build" / "lib" / "fishjam_fast"
    stale = [lib / "_playout.py", lib / "_playout.pxd", lib / f"_session_hot{SUFFIX}",
             lib / "_core" / f"gone{SUFFIX}"]  # fmt: skip
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"# from an earlier build")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FISHJAM_FAST_")}
    env["FISHJAM_FAST_SKIP_EXTENSION"] = "1"  # no compile: the copy is what is tested
    result = _wheel(tree, tmp_path / "dist", env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert [path for path in stale if path.exists()] == []
    assert "an earlier build's, not in this one" in output
    (wheel,) = (tmp_path / "dist").glob("fishjam_fast-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "fishjam_fast/_core/playout.py" in names and "fishjam_fast/py.typed" in names
    assert not [n for n in names if "_playout" in n.split("/")[-1] and "_core" not in n]
    assert not [n for n in names if n.endswith((".so", ".pyd"))], names


def test_the_sdist_holds_the_sources_and_leaves_tests_out(tmp_path: Path) -> None:
    tree = _source_copy(tmp_path)
    env = dict(os.environ, FISHJAM_FAST_SKIP_EXTENSION="1")
    result = subprocess.run(
        [sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path / "dist")],
        cwd=tree, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (sdist,) = (tmp_path / "dist").glob("fishjam_fast-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in (
        "LICENSE",
        "README.md",
        "pyproject.toml",
        "setup.py",
        "src_ext/_ext.pyx",
        "src_ext/codec.pxd",
        "src_ext/pcm_kernels.h",
        "protos/fishjam_fast/_proto/agent.proto",
        "fishjam_fast/_proto/agent_pb2.py",
        "fishjam_fast/_ext.pyi",
        "fishjam_fast/_core/playout.pxd",
        "fishjam_fast/_messages.pxd",
        "fishjam_fast/_core/locks.pxd",
        "fishjam_fast/_core/connection.pxd",
        "fishjam_fast/transport/_queue.pxd",
        "fishjam_fast/_picows_listener.pyi",
        "src_ext/picows_listener.pyx",
        "src_ext/picows_listener.pxd",
        "fishjam_fast/py.typed",
    ):
        assert needed in names, needed
    left_out = ("tests", "benchmarks", "fuzzing", "examples")
    assert not [n for n in names if n.split("/")[0] in left_out]
    assert not [n for n in names if n.endswith((".c", ".so", ".html"))], names
    assert "Apache License" in (tree / "LICENSE").read_text()
