#!/usr/bin/env bash
# Sets up a virtual environment, builds and installs fishjam_fast with the local
# Fishjam server and the plain SDK (for the side-by-side run), then runs the demo.
# Extra arguments go to the demo (--agents, --seconds, --chart PATH, --no-compare, --asyncio).
# The environment (.venv, or $FISHJAM_FAST_VENV) is reused as long as the package's
# sources are unchanged (scripts/_venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
VENV="${FISHJAM_FAST_VENV:-.venv}"
ready_venv "$VENV" "${FISHJAM_FAST_REQUIRE_EXTENSION:-0}" '.[demo]'
VENV="$(cd "$VENV" && pwd)"
cd /  # run the installed package, not the source tree
exec "$VENV/bin/python" -m fishjam_fast demo "$@"
