#!/usr/bin/env bash
# Builds the extension with AddressSanitizer and the debug-only invariants (FJ_DEBUG:
# every encoder checks it wrote exactly the size it computed) in a virtual environment
# of its own (.venv-asan), then runs the codec (agent messages and server notifications),
# PCM, fuzz-smoke and transport framing tests (the picows listener parses frames in C
# too) under ASan.
# Any ASan report fails the run. Extra arguments go to pytest. For CI (.ci/run):
#
#     bash scripts/asan_tests.sh
#
# Needs gcc with its ASan runtime (Debian: libasan8 and gcc; `gcc -print-file-name=
# libasan.so` must name a file); CC=clang works too (with libclang-rt-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${FISHJAM_FAST_ASAN_VENV:-.venv-asan}"
CC="${CC:-gcc}"

if ! command -v "$CC" > /dev/null; then
  echo "scripts/asan_tests.sh: no C compiler '$CC' (set CC, e.g. CC=gcc)" >&2
  exit 2
fi
case "$("$CC" --version | head -1)" in
  *clang*) runtime="$("$CC" -print-file-name=libclang_rt.asan-x86_64.so)" ;;
  *) runtime="$("$CC" -print-file-name=libasan.so)" ;;
esac
if [ ! -e "$runtime" ]; then
  echo "scripts/asan_tests.sh: $CC has no AddressSanitizer runtime (looked for" \
    "$runtime); Debian: apt-get install libasan8 (gcc) or libclang-rt-14-dev (clang)" >&2
  exit 2
fi

source scripts/_checked_build.sh
checked_venv "$VENV"
CC="$CC" LDSHARED="$CC -shared" \
  CFLAGS="-fsanitize=address -fno-omit-frame-pointer" LDFLAGS="-fsanitize=address" \
  FISHJAM_FAST_DEBUG=1 checked_install "$VENV" "[test]"

# a build that silently lost the flags must not pass as checked (the package is located,
# not imported: the ASan-linked extension loads only with the runtime preloaded)
"$VENV/bin/python" -I - << 'PY'  # -I: not the source tree in the current directory
import glob, importlib.util, os, sys
package = importlib.util.find_spec("fishjam_fast").submodule_search_locations[0]
found = glob.glob(os.path.join(package, "_ext.*.so"))
if not found or b"__asan_report" not in open(found[0], "rb").read():
    sys.exit(f"scripts/asan_tests.sh: {found or package} is not built with AddressSanitizer")
PY

# The runtime must be the first library loaded; leaks are not checked (CPython keeps
# objects until exit on purpose); PYTHONMALLOC=malloc makes every Python object a
# malloc block that ASan guards (pymalloc arenas would hide overflows between objects).
# halt_on_error + exitcode: the first report ends pytest with a failure.
export LD_PRELOAD="$runtime"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:exitcode=86:abort_on_error=0"
export PYTHONMALLOC=malloc
export FISHJAM_FAST_EXPECT_NATIVE=1
exec "$VENV/bin/pytest" -q -p no:cacheprovider \
  tests/test_codec_encode.py tests/test_codec_decode.py tests/test_codec_malformed.py \
  tests/test_notifications_codec.py \
  tests/test_pcm.py tests/test_fuzz_smoke.py tests/test_transport_framing.py "$@"
