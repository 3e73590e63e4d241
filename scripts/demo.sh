#!/usr/bin/env bash
# Sets up a virtual environment, builds and installs fishjam_fast with the local
# Fishjam server and the plain SDK (for the side-by-side run), then runs the demo.
# Extra arguments go to the demo (--agents, --seconds, --chart PATH, --no-compare, --asyncio).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${FISHJAM_FAST_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet '.[demo]'
VENV="$(cd "$VENV" && pwd)"
cd /  # run the installed package, not the source tree
exec "$VENV/bin/python" -m fishjam_fast demo "$@"
