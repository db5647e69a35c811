#!/usr/bin/env bash
# The Python package (crates/python): its abi3 wheel built with maturin (from
# PyPI, in a private virtual environment), installed into a fresh one with
# the tests' pinned numpy and pytest, its tests run against the installed
# wheel and the CLI, and, given the demo's folder and cache ($1, $2), the
# demo data ranked from Python exactly as `spanwatch score --json` ranks it.
# Usage: bash .ci/python.sh [DEMO_DIR CACHE_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/build"
"$work/build/bin/pip" install -q --disable-pip-version-check "maturin==1.16.0"
"$work/build/bin/maturin" build --release --quiet -m crates/python/Cargo.toml -o "$work/wheels"
wheel=$(ls "$work"/wheels/spanwatch-*.whl)
echo "python: built $(basename "$wheel")"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "$wheel" -r crates/python/tests/requirements.txt
# The tests import the installed wheel, not the sources.
(cd "$work" && SPANWATCH_BIN="$target/release" "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$OLDPWD/crates/python/tests")
if [ $# -ge 2 ]; then
  # The CLI outside cargo, from a target folder outside the checkout: told where the models are.
  SPANWATCH_MODELS="$PWD/models" "$target/release/spanwatch" score "$1" --json -q --cache "$2" > "$work/cli.json"
  (cd "$work" && "$work/venv/bin/python" - "$1" "$2" "$work/cli.json" <<'PY'
import json, sys
import spanwatch
data, cache, cli = sys.argv[1:]
expected = json.load(open(cli))
ranking = spanwatch.rank(data, cache=cache)
ours = [(g.name, g.ds, g.k, g.corrected) for g in ranking.generators]
theirs = [(g["name"], g["ds"], g["k"], g["corrected"]) for g in expected["generators"]]
assert ours == theirs, (ours, theirs)
print("python: spanwatch.rank on the demo data gives the CLI's ranking:", ", ".join(f"{n} {ds:.4f}" for n, ds, _, _ in ours))
PY
  )
fi
