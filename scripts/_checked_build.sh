# Sourced by the scripts that build the extension with special flags (scripts/
# asan_tests.sh, fuzzing/build.sh), each in a virtual environment of its own.

# checked_venv VENV: the virtual environment, with the build requirements of
# pyproject.toml (the package is built without isolation, see checked_install).
checked_venv() {
  [ -x "$1/bin/python" ] || python3 -m venv "$1"
  "$1/bin/python" -m pip install --quiet --upgrade pip
  "$1/bin/python" -m pip install --quiet "setuptools>=77" "Cython>=3.0.10" "numpy>=2.0" "picows>=2.3"
}

# checked_install VENV [EXTRAS]: installs the package into VENV, built without isolation
# so that the caller's CC/CFLAGS/LDFLAGS/FISHJAM_FAST_* reach the extension (the
# dependencies come as wheels), from a copy of the tree in VENV/src without build
# products: built in place, setuptools and cythonize would reuse build/ and
# src_ext/_ext.c of an ordinary build (or leave instrumented ones for the next
# ordinary build), as they compare timestamps, not flags.
checked_install() {
  "$1/bin/python" -m pip uninstall --quiet --yes fishjam-fast 2> /dev/null || true
  rm -rf "$1/src"
  mkdir -p "$1/src"
  tar --exclude=./build --exclude='./.venv*' --exclude=./venv --exclude=./.git \
    --exclude='./src_ext/*.c' --exclude='*.so' --exclude=./fuzzing/corpus -cf - . \
    | tar -xf - -C "$1/src"
  FISHJAM_FAST_REQUIRE_EXTENSION=1 \
    "$1/bin/python" -m pip install --quiet --no-build-isolation "$1/src${2:-}"
}
