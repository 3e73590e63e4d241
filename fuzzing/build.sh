#!/usr/bin/env bash
# Builds the fuzzing environment: a virtual environment of its own (.venv-fuzz) with
# atheris and fishjam_fast whose extension is compiled by clang with
# -fsanitize=fuzzer-no-link, so libFuzzer (inside atheris) sees the C code's edges, and
# with AddressSanitizer (-fsanitize=address) unless FISHJAM_FAST_FUZZ_ASAN=0.
# Then run the harness with fuzzing/run.sh (see fuzzing/README.md).
#
# atheris is built from source (the first time: about 4 CPU-minutes): only then does it
# make asan_with_fuzzer.so, the ASan runtime with libFuzzer linked in that run.sh
# preloads so that the extension's coverage callbacks reach libFuzzer (atheris's
# native_extension_fuzzing.md; the wheels lack it).
#
# Needs clang and its sanitizer runtimes (Debian: apt-get install clang
# libclang-rt-dev, or the -14 versions); installs them with apt-get when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${FISHJAM_FAST_FUZZ_VENV:-.venv-fuzz}"
ASAN="${FISHJAM_FAST_FUZZ_ASAN:-1}"

# clang, and the sanitizer runtime that -fsanitize=fuzzer-no-link,address links against
find_clang() {
  for candidate in clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14; do
    if command -v "$candidate" > /dev/null \
      && [ -e "$("$candidate" -print-file-name=libclang_rt.asan-x86_64.so)" ]; then
      echo "$candidate"
      return
    fi
  done
}
CLANG="${CC_FUZZ:-$(find_clang)}"
if [ -z "$CLANG" ] && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
  echo "installing clang and its sanitizer runtimes (apt-get)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang \
    "$(apt-cache search --names-only '^libclang-rt-[0-9]+-dev$' | sort -V | tail -1 | cut -d' ' -f1)" \
    > /dev/null
  CLANG="$(find_clang)"
fi
if [ -z "$CLANG" ]; then
  echo "fuzzing/build.sh needs clang with its sanitizer runtimes (Debian: apt-get install" \
    "clang libclang-rt-14-dev); set CC_FUZZ to a clang binary to choose one" >&2
  exit 2
fi

source scripts/_checked_build.sh
checked_venv "$VENV"
# atheris, built here for its asan_with_fuzzer.so (see above)
if ! "$VENV/bin/python" -c 'import atheris, os, sys
sys.exit(not os.path.exists(os.path.join(atheris.path(), "asan_with_fuzzer.so")))' 2> /dev/null
then
  echo "building atheris from source with $CLANG (a few minutes)" >&2
  CLANG_BIN="$(command -v "$CLANG")" "$VENV/bin/python" -m pip install --quiet \
    --force-reinstall --no-binary atheris "atheris>=2.3"
fi
sanitizers="fuzzer-no-link"
[ "$ASAN" = "1" ] && sanitizers="$sanitizers,address"
# -O1 -g: readable sanitizer reports; no -O3 (setup.py's) inlining everything away
CC="$CLANG" LDSHARED="$CLANG -shared" \
  CFLAGS="-fsanitize=$sanitizers -fno-omit-frame-pointer -g -O1" \
  LDFLAGS="-fsanitize=$sanitizers" \
  checked_install "$VENV"
echo "built $VENV (sanitizers: $sanitizers); run: bash fuzzing/run.sh -max_total_time=60"
