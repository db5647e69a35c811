#!/usr/bin/env bash
# Idle CPU of the edge daemon with a spool full of stray files (issue 22,
# item 27): N files that are not pair files (default 100,000), mosquitto on
# loopback, the MCU test's ViT-S/14 bundle; prints the daemon's CPU share
# over SECONDS (default 60) once it has listed the strays.
#   cargo build --release -p spanwatch-edge && bash benchmarks/idle_strays.sh [N] [SECONDS]
# Needs mosquitto and the ViT-S/14 (made by `spanwatch` on first use).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-100000}
seconds=${2:-60}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/in"
python3 -c "import sys; [open(f'$work/in/stray{i:06d}.txt', 'w').close() for i in range($n)]"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" > "$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" 2>/dev/null &
cat > "$work/edge.toml" <<TOML
bundle = "$root/firmware/mcu/data/calibration.bundle"
input = "$work/in"
state_dir = "$work/state"
broker = "mqtt://127.0.0.1:$port"
site = "bench"
device = "idle"
TOML
SPANWATCH_MODELS=${SPANWATCH_MODELS:-$root/models} "${CARGO_TARGET_DIR:-$root/target}/release/spanwatch-edge" --config "$work/edge.toml" 2> "$work/edge.log" &
daemon=$!
until grep -q "more spool entries" "$work/edge.log"; do sleep 0.5; done
ticks() { awk '{print $14 + $15}' "/proc/$daemon/stat"; }
before=$(ticks)
sleep "$seconds"
after=$(ticks)
hz=$(getconf CLK_TCK)
echo "$n stray files: the idle daemon used $(python3 -c "print(f'{100 * ($after - $before) / $hz / $seconds:.1f}')") % of a core over $seconds s"
