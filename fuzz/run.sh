#!/usr/bin/env bash
# Runs the cargo-fuzz targets (libFuzzer) for SECONDS each (default 600),
# seeded with the repository's own files. Needs a nightly toolchain and
# cargo-fuzz (installed here when missing). Safe Rust, so no sanitizer: the
# fuzzers look for panics, hangs (-timeout) and memory beyond the ceiling
# (-rss_limit_mb=256: the decoder's documented 130 MB for an image at the
# limit, plus the fuzzer's own process and corpus). Findings land in
# fuzz/artifacts/<target>/.
#   bash fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(bundle_decode config_parse image_decode spool_name state_file pairs_csv)
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
mkdir -p "$seeds"/{bundle_decode,config_parse,image_decode,spool_name,state_file,pairs_csv} logs
cp ../firmware/mcu/data/calibration.bundle "$seeds/bundle_decode/"
cp ../crates/edge/debian/edge.toml "$seeds/config_parse/"
cp ../tests/fixtures/images/*.png "$seeds/image_decode/"
printf 'synthetic,source\ns1.png,a.png\ns2.png,../negative/b.png\n' > "$seeds/pairs_csv/pairs.csv"
printf 'synthetic,source\ns1.png,../../real/other/x.png\n' > "$seeds/pairs_csv/outside.csv"
printf 'redb' > "$seeds/state_file/short"
for name in pair-0001.source.png a.b.synthetic.JPG .hidden.source.png notes.txt; do
    printf '%s' "$name" > "$seeds/spool_name/$name"
done

for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    echo "== $target: ${seconds} s"
    cargo +nightly fuzz run --sanitizer none "$target" "corpus/$target" "$seeds/$target" -- \
        -max_total_time="$seconds" -timeout=20 -rss_limit_mb=256 -max_len=1048576 -print_final_stats=1 \
        > "logs/$target.log" 2>&1 || { echo "$target FAILED: see fuzz/logs/$target.log"; tail -n 30 "logs/$target.log"; exit 1; }
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^Done' "logs/$target.log" || true
done
