# Sourced by the scripts that build the extension with special flags (scripts/
# asan_tests.sh, fuzzing/build.sh): `build_copy DIR` copies the source tree into DIR,
# without build products and environments, and the build runs there. Built in place,
# setuptools would reuse build/ and Cython src_ext/_ext.c from an ordinary build (or
# leave instrumented ones for the next ordinary build), since it compares timestamps,
# not flags.
build_copy() {
  rm -rf "$1"
  mkdir -p "$1"
  tar --exclude=./build --exclude='./.venv*' --exclude=./venv --exclude=./.git \
    --exclude='./src_ext/*.c' --exclude='*.so' --exclude=./fuzzing/corpus -cf - . \
    | tar -xf - -C "$1"
}
