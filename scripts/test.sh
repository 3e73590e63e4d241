#!/usr/bin/env bash
# Sets up a virtual environment, builds and installs fishjam_fast with its test
# dependencies (the Cython extension is compiled here; a failed compile is fatal),
# then runs the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${FISHJAM_FAST_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# the checks' tools and the stubs they read at the pinned development versions
FISHJAM_FAST_REQUIRE_EXTENSION=1 "$VENV/bin/python" -m pip install --quiet \
  -c constraints-dev.txt '.[test]'
export FISHJAM_FAST_DEV_PINS=1
# the extension was required above: tests that check it loaded must not pass vacuously
export FISHJAM_FAST_EXPECT_NATIVE=1
# pytest (not `python -m pytest`) so the source tree is not put before the installed package
exec "$VENV/bin/pytest" "$@"
