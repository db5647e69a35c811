#!/usr/bin/env bash
# ARM64 edge boxes, checked on an x86_64 machine: cross-build spanwatch and
# spanwatch-edge for aarch64-unknown-linux-gnu (rustup target + Debian's cross
# gcc, linker set in .cargo/config.toml), then under qemu-user:
#  1. embedding parity with the x86_64 build on real CC0 images, both models
#     (max |difference| <= 1e-4);
#  2. the aarch64 edge against mosquitto on loopback, on a short stream of
#     the demo's pairs (12 faithful, then 12 wrong-family; DRAWN defects):
#     every metric arrives in order, and the alert is raised at the same pair
#     as the x86_64 edge's on the same stream;
#  3. the emulated speed (qemu-user on this machine, NOT the hardware's).
# Not part of .ci/run: the cross build alone takes ~27 min on 2 cores.
# Usage: .ci/arm64.sh DEMO_DIR   (the output folder of a finished spanwatch-demo
# run with the default model, e.g. `cargo run --release --bin spanwatch-demo -- --out DIR`)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
demo="$1"
host_target="${CARGO_TARGET_DIR:-$repo/target}"
arm_target="${SPANWATCH_ARM64_TARGET_DIR:-$HOME/.cache/spanwatch-aarch64-target}"
missing=()
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || missing+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null 2>&1 || missing+=(qemu-user)
command -v mosquitto >/dev/null 2>&1 || missing+=(mosquitto mosquitto-clients)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
rustup target add aarch64-unknown-linux-gnu >/dev/null
start=$(date +%s)
CARGO_TARGET_DIR="$arm_target" cargo build --release --target aarch64-unknown-linux-gnu -p spanwatch -p spanwatch-edge
cargo build --release   # the x86_64 side: the workspace build the tests use
echo "arm64: cross build done in $(( $(date +%s) - start )) s"
arm="$arm_target/aarch64-unknown-linux-gnu/release"
file "$arm/spanwatch-edge" | sed 's/^/arm64: /'
# A Cortex-A72 (a Raspberry Pi 4's core, common in ARM edge boxes): with
# qemu's default "max" CPU, tract picks kernels that qemu emulates about 7x
# more slowly (49 s against 6.7 s for one EfficientNet image, model load included).
run_arm() { qemu-aarch64 -cpu cortex-a72 -L /usr/aarch64-linux-gnu "$@"; }
# The models come from the repository (and the ViT from the model store).
export SPANWATCH_MODELS="$repo/models"
work=$(mktemp -d)
cleanup() {
  [ -n "${edge:-}" ] && kill "$edge" 2>/dev/null || true
  [ -n "${broker:-}" ] && kill "$broker" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# 1. Parity on real images of several sizes (tests/fixtures/images) and texture tiles.
mkdir -p "$work/images"
cp tests/fixtures/images/*.png "$work/images/"
find "$demo/real/negative" -name '*.png' | sort | head -8 | xargs -I{} cp {} "$work/images/"
for model in vit-s14 efficientnet-lite0; do
  "$host_target/release/spanwatch" --quiet embed "$work/images" --model "$model" --no-cache -o "$work/x86-$model"
  s=$(date +%s.%N)
  run_arm "$arm/spanwatch" --quiet embed "$work/images" --model "$model" --no-cache -o "$work/arm-$model"
  e=$(date +%s.%N)
  python3 - "$work/x86-$model/embeddings.npy" "$work/arm-$model/embeddings.npy" "$model" "$s" "$e" <<'PY'
import ast, struct, sys
def load(path):
    data = open(path, "rb").read()
    header_len = struct.unpack("<H", data[8:10])[0]
    header = ast.literal_eval(data[10:10 + header_len].decode())
    assert header["descr"] == "<f4", header
    count = 1
    for n in header["shape"]:
        count *= n
    return header["shape"], struct.unpack("<%df" % count, data[10 + header_len:10 + header_len + 4 * count])
(shape, a), (shape_b, b) = load(sys.argv[1]), load(sys.argv[2])
assert shape == shape_b, (shape, shape_b)
worst = max(abs(x - y) for x, y in zip(a, b))
seconds = (float(sys.argv[5]) - float(sys.argv[4])) / shape[0]
print(f"arm64: parity {sys.argv[3]}: {shape[0]} real images x d = {shape[1]}: max |aarch64 - x86_64| = {worst:.2e} "
      f"(bound 1e-4); emulated {seconds:.2f} s per image incl. model load")
sys.exit(0 if worst <= 1e-4 else 1)
PY
done

# 2. The edge, x86_64 natively and then aarch64 under qemu-user, against
#    mosquitto on loopback, on the same short stream: the demo stream's first
#    12 faithful pairs, then 12 of the demo data's wrong-family pairs (DRAWN
#    defects). The emulated ViT is far too slow for a stream (see the speed
#    above), so this run calibrates EfficientNet-Lite0, alerting on its cone
#    DS over a window of 8, on the demo's data.
#    Both must publish every metric in order and raise the alert at the same pair.
"$host_target/release/spanwatch" --quiet calibrate "$demo" --generator faithful --model efficientnet-lite0 --window 8 -o "$work/short.bundle"
mkdir -p "$work/stream"
n=0
add_pair() {  # add_pair SOURCE SYNTHETIC
  cp "$1" "$work/stream/$(printf 'pair-%04d' "$n").source.png"
  cp "$2" "$work/stream/$(printf 'pair-%04d' "$n").synthetic.png"
  n=$(( n + 1 ))
}
for i in $(seq 0 11); do
  id=$(printf 'pair-%04d' "$i")
  add_pair "$demo/spool/done/$id.source.png" "$demo/spool/done/$id.synthetic.png"
done
for i in $(seq 0 11); do
  tile=$(printf 'tile_%03d.png' "$i")
  add_pair "$demo/real/negative/$tile" "$demo/synthetic/wrong-family/$tile"
done
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mosquitto -p "$port" >"$work/mosquitto.log" 2>&1 &
broker=$!
sleep 1
# edge_run LABEL COMMAND...: runs the edge on the stream until every metric
# is in; writes "<alert pair> <seconds>" to LABEL.result.
edge_run() {
  local label=$1; shift
  local spool="$work/spool-$label"
  mkdir -p "$spool"
  mosquitto_sub -p "$port" -t "spanwatch/$label/line1/metrics" -C "$n" -W 3600 >"$work/$label.metrics" &
  local metrics_sub=$!
  mosquitto_sub -p "$port" -t "spanwatch/$label/line1/alert" -C 1 -W 3600 >"$work/$label.alert" &
  local alert_sub=$!
  sleep 0.5
  local s e
  s=$(date +%s.%N)
  "$@" --bundle "$work/short.bundle" --input "$spool" --broker "mqtt://127.0.0.1:$port" --site "$label" --device line1 2>"$work/$label.log" &
  edge=$!
  for f in $(ls "$work/stream" | sort); do
    cp "$work/stream/$f" "$spool/.$f.partial.png" && mv "$spool/.$f.partial.png" "$spool/$f"
  done
  wait "$metrics_sub" || { echo "arm64: $label: not every metric within an hour; its log:"; tail -20 "$work/$label.log"; exit 1; }
  e=$(date +%s.%N)
  wait "$alert_sub" || { echo "arm64: $label: no alert"; exit 1; }
  kill -TERM "$edge"; wait "$edge" || true; edge=
  local order
  order=$(grep -o '"pair":"pair-[0-9]*"' "$work/$label.metrics" | sed 's/.*pair-//; s/"//' | awk '{printf "%d\n", $1}')
  [ "$order" = "$(seq 0 $(( n - 1 )))" ] || { echo "arm64: $label: metrics missing or out of order"; exit 1; }
  grep -q '"state":"raised"' "$work/$label.alert" || { echo "arm64: $label: the alert is not raised"; exit 1; }
  echo "$(grep -o '"pair":"pair-[0-9]*"' "$work/$label.alert" | head -1) $(python3 -c "print(f'{$e - $s:.1f}')")" >"$work/$label.result"
}
edge_run x86 "$host_target/release/spanwatch-edge"
edge_run arm64 qemu-aarch64 -cpu cortex-a72 -L /usr/aarch64-linux-gnu "$arm/spanwatch-edge"
read -r x86_alert x86_seconds <"$work/x86.result"
read -r arm_alert arm_seconds <"$work/arm64.result"
echo "arm64: edge x86_64 native: $n metrics in order, alert raised at $x86_alert; $(python3 -c "print(f'{$n / $x86_seconds:.2f}')") pairs/s"
echo "arm64: edge aarch64 under qemu-user: $n metrics in order, alert raised at $arm_alert; $(python3 -c "print(f'{$n / $arm_seconds:.3f}')") pairs/s end to end, model load included (emulated on this x86_64 machine, NOT an ARM64 box's speed)"
[ "$x86_alert" = "$arm_alert" ] || { echo "arm64: the alert pairs differ"; exit 1; }
echo "arm64: all checks passed in $(( $(date +%s) - start )) s"
