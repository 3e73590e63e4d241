"""Build of the fishjam_fast._ext Cython extension.

Environment variables (mirroring asyncpg/uvloop/websockets):

FISHJAM_FAST_REQUIRE_EXTENSION=1  a failed compile fails the install (CI sets it);
                                  otherwise the package installs pure-Python.
FISHJAM_FAST_SKIP_EXTENSION=1     do not build the extension at all.
FISHJAM_FAST_CYTHON_ANNOTATE=1    write Cython's HTML annotation next to the sources.
FISHJAM_FAST_DEBUG=1              a debug build: -O0 -g and line tracing (coverage, gdb),
                                  and FJ_DEBUG=1, which turns on the debug-only
                                  invariants of src_ext (every encoder checks that it
                                  wrote exactly the size it computed; ext_debug.h).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


REQUIRE_EXTENSION = _flag("FISHJAM_FAST_REQUIRE_EXTENSION")
SKIP_EXTENSION = _flag("FISHJAM_FAST_SKIP_EXTENSION")
ANNOTATE = _flag("FISHJAM_FAST_CYTHON_ANNOTATE")
DEBUG = _flag("FISHJAM_FAST_DEBUG")


ONE_SOURCE_MODULES = (
    "_core/playout",
    "_messages",
    "_core/locks",
    "transport/_queue",
    "_core/connection",
)
"""Modules compiled from their Python source (Cython's pure-Python mode), see _extensions."""

STALE_EXTENSIONS = [
    f"{where}fishjam_fast/{name}*.{suffix}"
    for where in ("build/**/", "")
    for name in ("_ext", *ONE_SOURCE_MODULES, "_picows_listener")
    for suffix in ("so", "pyd")
]
"""Where earlier builds leave the compiled extension: setuptools packages whatever is in
build/lib, and an in-place copy is imported from a source checkout."""


def remove_stale_extensions(*also: str) -> None:
    """Deletes compiled copies of the extension that this build did not make.

    Called whenever the extension is not built (a failed compile, no Cython, skipped), so
    that the wheel never carries an old ``_ext*.so`` in place of the pure-Python fallback.

    Args:
        *also: Further paths to delete (build_ext's output path, wherever it is).
    """
    here = Path(__file__).resolve().parent
    stale = {p for pattern in STALE_EXTENSIONS for p in here.glob(pattern)}
    stale |= {Path(p) for p in also if os.path.exists(p)}
    for path in sorted(stale):
        path.unlink()
        print(f"WARNING: removed the stale extension {path}", file=sys.stderr)


class PruningBuildPy(build_py):
    """Copies the package into build/lib, then deletes what an earlier build left there.

    setuptools reuses build/lib and packages all of it: a module moved or deleted since
    (``_playout.py`` after it moved into ``_core/``, or its compiled copy) would still be
    installed, and a source checkout's wheel would differ from a fresh clone's. Kept:
    the files this copy wrote, and the compiled modules of this build's extensions (build_ext
    runs next and replaces them).
    """

    SOURCE_SUFFIXES = (".py", ".pyi", ".pxd", ".typed")
    COMPILED_SUFFIXES = (".so", ".pyd")

    def run(self) -> None:
        super().run()
        package = Path(self.build_lib) / "fishjam_fast"
        if not package.is_dir():
            return
        written = {Path(p).resolve() for p in self.get_outputs(include_bytecode=False)}
        extensions = {e.name for e in self.distribution.ext_modules or []}
        for path in sorted(package.rglob("*")):
            if not path.is_file():
                continue
            if path.suffix in self.SOURCE_SUFFIXES:
                stale = path.resolve() not in written
            elif path.suffix in self.COMPILED_SUFFIXES:
                # fishjam_fast/_core/connection.cpython-311-x86_64-linux-gnu.so
                parts = path.relative_to(self.build_lib).parts
                module = ".".join((*parts[:-1], parts[-1].split(".")[0]))
                stale = module not in extensions
            else:
                continue
            if stale:
                path.unlink()
                print(f"removed {path}: an earlier build's, not in this one", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """Builds the extension; a failure falls back to pure Python unless it is required."""

    def finalize_options(self) -> None:
        super().finalize_options()
        # the modules compile side by side (the large _ext beside the small ones): a
        # quarter less build time on two cores; `--parallel` when given still decides
        if self.parallel is None:
            self.parallel = max(1, min(os.cpu_count() or 1, len(self.extensions or [])))

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            self._fail(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        remove_stale_extensions(*(self.get_ext_fullpath(e.name) for e in self.extensions))
        if REQUIRE_EXTENSION:
            raise
        print(
            f"WARNING: building the fishjam_fast extension failed ({exc!r}); "
            "installing the pure-Python fallback",
            file=sys.stderr,
        )


def _extensions() -> list[Extension]:
    if SKIP_EXTENSION:
        remove_stale_extensions()
        return []
    try:
        import numpy
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRE_EXTENSION:
            raise
        print("WARNING: Cython or NumPy missing; installing pure-Python", file=sys.stderr)
        remove_stale_extensions()
        return []

    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
    compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]
    directives = {
        "language_level": "3",
        # bounds checks stay on everywhere (no function switches them off): the hot
        # loops index raw pointers, which Cython does not check, after the size checks
        # each of them documents
        "boundscheck": True,
        "wraparound": False,
        "cdivision": True,
        "embedsignature": True,
    }
    if DEBUG:
        macros.append(("CYTHON_TRACE_NOGIL", "1"))
        macros.append(("FJ_DEBUG", "1"))
        directives["linetrace"] = True

    extension = Extension(
        "fishjam_fast._ext",
        sources=["src_ext/_ext.pyx"],
        include_dirs=[numpy.get_include(), "src_ext"],
        define_macros=macros,
        extra_compile_args=compile_args,
    )
    # modules compiled from their Python source (Cython's pure-Python mode with an
    # augmenting .pxd beside each): one source for both builds. The decoded message
    # classes, whose C fields _ext's decoder stores; the playout clock and the read lock,
    # whose C fields and methods the session core uses; the receive queue,
    # which the picows listener cimports; the session core (the Connection), which the
    # listener cimports and which cimports _ext's decoder and encoder (so it needs _ext's
    # C headers and NumPy's, as the listener)
    one_source = [
        Extension(
            f"fishjam_fast.{module.replace('/', '.')}",
            sources=[f"fishjam_fast/{module}.py"],
            include_dirs=[numpy.get_include(), "src_ext"],
            define_macros=macros,
            extra_compile_args=compile_args,
        )
        for module in ONE_SOURCE_MODULES
    ]
    extensions = [extension, *one_source]
    include_path = ["src_ext", "."]
    listener = _picows_listener(macros, compile_args)
    if listener is not None:
        extensions.append(listener[0])
        include_path.append(listener[1])
    return cythonize(
        extensions,
        compiler_directives=directives,
        annotate=ANNOTATE,
        # always regenerate the C (and so recompile): pip builds in the source tree, and
        # by timestamps alone a FISHJAM_FAST_DEBUG build would reuse the build/ output of
        # an ordinary one (or the other way round)
        force=True,
        # ".": Cython pairs the module fishjam_fast._ext with fishjam_fast/_ext.pxd;
        # picows' directory for the listener's `cimport picows.picows`
        include_path=include_path,
    )


def _picows_listener(
    macros: list[tuple[str, str]], compile_args: list[str]
) -> tuple[Extension, str] | None:
    """The picows transport's per-frame listener: it cimports picows' picows.pxd.

    Without picows at build time (it is a dependency: only a broken environment lacks
    it) the listener is not built, and the default transport is websockets.
    """
    try:
        import picows
    except ImportError:
        if REQUIRE_EXTENSION:
            raise
        print("WARNING: picows missing at build time; its listener stays Python", file=sys.stderr)
        return None
    import numpy

    extension = Extension(
        "fishjam_fast._picows_listener",
        sources=["src_ext/picows_listener.pyx"],
        # it cimports the session core's Connection (a direct C call per frame), which
        # cimports _ext's declarations: they bring their C headers and NumPy's
        include_dirs=[numpy.get_include(), "src_ext"],
        define_macros=macros,
        extra_compile_args=compile_args,
    )
    # the directory holding the picows package, where `cimport picows.picows` looks
    return extension, os.path.dirname(os.path.dirname(picows.__file__))


setup(
    ext_modules=_extensions(),
    cmdclass={"build_py": PruningBuildPy, "build_ext": OptionalBuildExt},
)
