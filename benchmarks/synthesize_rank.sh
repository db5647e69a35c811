#!/usr/bin/env bash
# Generate, then rank: every `spanwatch synthesize` method on two datasets,
# then `spanwatch score` with the default model (ViT-S/14) and 200 bootstrap
# replicates. The datasets:
#   demo       the bundled demo (drawn scratches on CC0 texture tiles; its
#              five graded generators are ranked beside the five methods);
#   elpv-mono  200 defect-free and 60 defective monocrystalline ELPV cells
#              (photographed defects, fetched from PyPI at run time, CC BY-NC-SA
#              4.0, never committed).
# Usage: bash benchmarks/synthesize_rank.sh [OUT]   (about 10 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${TMPDIR:-/tmp}/spanwatch-synthesize-rank}"
rm -rf "$out"
mkdir -p "$out"
# The workspace build README's test command makes (one feature set, so
# nothing is compiled twice), with the examples.
cargo build --release -q --workspace --examples
target="${CARGO_TARGET_DIR:-target}"
for dataset in demo elpv-mono; do
  data="$out/$dataset"
  "$target/release/examples/datasets" "$dataset" "$data"
  for method in cutpaste cutpaste-scar draem nsa transplant; do
    start=$(date +%s.%N)
    "$target/release/spanwatch" synthesize "$data" --method "$method" --seed 0
    echo "  ($method took $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }") s)"
  done
  "$target/release/spanwatch" score "$data" --bootstrap 200 -q | tee "$out/$dataset.txt"
  "$target/release/spanwatch" score "$data" --bootstrap 200 -q --json > "$out/$dataset.json"
done
echo "rankings in $out/demo.txt and $out/elpv-mono.txt"
