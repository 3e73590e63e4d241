# Sourced by scripts/test.sh and scripts/demo.sh: the virtual environment, reused when
# nothing it was built from changed.
#
# ready_venv VENV REQUIRE PIP_ARGS... creates VENV if needed and runs `pip install
# PIP_ARGS` (e.g. '.[test]'), with FISHJAM_FAST_REQUIRE_EXTENSION=REQUIRE, unless VENV/.fishjam_fast-stamp says that
# the package was installed from these very sources (the hash of the package, src_ext,
# protos, setup.py, pyproject.toml, MANIFEST.in, constraints-dev.txt and the build
# switches FISHJAM_FAST_*) and that these arguments were installed
# on top of them. A changed file rebuilds the extension; an unchanged tree starts at
# once. The stamp is removed before an install and written after it succeeded, so an
# interrupted or failed install is retried next time. `.ci/run` deletes its virtual
# environments first: CI always builds from scratch.

STAMP_NAME=.fishjam_fast-stamp

# source_hash: one hash of every file the installed package is built from, with its
# path (a renamed or deleted file counts), and of the switches setup.py reads.
source_hash() {
  local sha=(sha256sum)
  command -v sha256sum > /dev/null || sha=(shasum -a 256)  # macOS
  {
    find fishjam_fast src_ext protos -type f \
      ! -name '*.c' ! -name '*.so' ! -name '*.pyd' ! -name '*.html' ! -name '*.pyc' \
      ! -path '*/__pycache__/*' -print0 \
      | LC_ALL=C sort -z | xargs -0 "${sha[@]}"
    "${sha[@]}" setup.py pyproject.toml MANIFEST.in constraints-dev.txt
    env | LC_ALL=C sort | grep -E '^FISHJAM_FAST_(DEBUG|SKIP_EXTENSION|CYTHON_ANNOTATE)=' || true
  } | "${sha[@]}" | cut -d' ' -f1
}

ready_venv() {
  local venv="$1" require="$2"
  shift 2
  local stamp="$venv/$STAMP_NAME"
  local hash wanted
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || return
  hash="$(source_hash)"
  # what the stamp lists under the hash: each install done on these sources
  wanted="require=$require $*"
  if [ -f "$stamp" ] && [ "$(head -n 1 "$stamp")" = "$hash" ] \
    && tail -n +2 "$stamp" | grep -qxF -- "$wanted"; then
    echo "$(basename "$0"): $venv is up to date with the sources (delete $stamp to reinstall)" >&2
    return 0
  fi
  # same sources, another requirement (the demo's after the tests'): keep the others
  local others=""
  if [ -f "$stamp" ] && [ "$(head -n 1 "$stamp")" = "$hash" ]; then
    others="$(tail -n +2 "$stamp")"
  fi
  rm -f "$stamp"
  echo "$(basename "$0"): installing $* into $venv (compiles the extension) ..." >&2
  # `|| return`: the stamp is written only after a successful install, whether or not
  # the caller runs under `set -e`
  "$venv/bin/python" -m pip install --quiet --upgrade pip || return
  FISHJAM_FAST_REQUIRE_EXTENSION="$require" "$venv/bin/python" -m pip install --quiet "$@" \
    || return
  { echo "$hash"; [ -z "$others" ] || echo "$others"; echo "$wanted"; } > "$stamp"
}
