#!/usr/bin/env bash
# Sets up a virtual environment, builds and installs fishjam_fast with its test
# dependencies (the Cython extension is compiled here; a failed compile is fatal),
# then runs the test suite. Extra arguments go to pytest.
#
# The environment (.venv, or $FISHJAM_FAST_VENV) is reused as long as the package's
# sources are unchanged (scripts/_venv.sh); any change reinstalls and recompiles.
# --quick runs the quick subset: every test not marked `slow` (-m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
VENV="${FISHJAM_FAST_VENV:-.venv}"
ARGS=()
for arg in "$@"; do
  if [ "$arg" = "--quick" ]; then
    ARGS+=(-m "not slow")
  else
    ARGS+=("$arg")
  fi
done
# the checks' tools and the stubs they read at the pinned development versions; the
# extension is required
ready_venv "$VENV" 1 -c constraints-dev.txt '.[test]'
export FISHJAM_FAST_DEV_PINS=1
# the extension was required above: tests that check it loaded must not pass vacuously
export FISHJAM_FAST_EXPECT_NATIVE=1
# pytest (not `python -m pytest`) so the source tree is not put before the installed package
exec "$VENV/bin/pytest" ${ARGS[@]+"${ARGS[@]}"}
