#!/usr/bin/env bash
# Runs the fuzz harness in the environment fuzzing/build.sh made, with the sanitizer
# runtime preloaded when the extension was built with AddressSanitizer. Arguments go
# to libFuzzer, e.g.:  bash fuzzing/run.sh -max_total_time=600 fuzzing/corpus
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${FISHJAM_FAST_FUZZ_VENV:-.venv-fuzz}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "no $VENV: run bash fuzzing/build.sh first" >&2
  exit 2
fi
mkdir -p fuzzing/corpus
# atheris's ASan runtime with libFuzzer linked in (fuzzing/build.sh): preloaded so that
# the instrumented extension's coverage callbacks reach libFuzzer, with or without
# ASan in the extension (atheris's native_extension_fuzzing.md)
runtime="$("$VENV/bin/python" -c 'import atheris; print(atheris.path())')/asan_with_fuzzer.so"
if [ ! -e "$runtime" ]; then
  echo "no $runtime: run bash fuzzing/build.sh first" >&2
  exit 2
fi
# leaks: CPython keeps objects until exit on purpose; PYTHONMALLOC=malloc: every Python
# object is a malloc block that ASan guards (pymalloc arenas would hide overflows)
export LD_PRELOAD="$runtime" ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1"
export PYTHONMALLOC=malloc
exec "$VENV/bin/python" fuzzing/fuzz_decode.py -artifact_prefix=fuzzing/ "$@" fuzzing/corpus
