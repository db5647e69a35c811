#!/usr/bin/env bash
# The edge's Debian package, installed and run as a user would: build it with
# cargo-deb from the release build, install it with dpkg, verify the systemd
# unit, calibrate a bundle for the packaged model on the demo data, check the
# installed config, then run the installed binary as the service's user with
# the installed config against mosquitto until it publishes metrics. The
# package is purged afterwards so the machine is left as it was.
# Usage: .ci/deb-smoke.sh DEMO_DATA_DIR   (with CARGO_TARGET_DIR set)
set -euo pipefail
cd "$(dirname "$0")/.."
demo="$1"
target="${CARGO_TARGET_DIR:-target}"
command -v cargo-deb >/dev/null 2>&1 || cargo install cargo-deb --version 3.8.0 --locked
cargo deb -p spanwatch-edge --no-build --output "$target/debian/spanwatch-edge.deb"
work=$(mktemp -d)
cleanup() {
  [ -n "${edge:-}" ] && kill "$edge" 2>/dev/null || true
  [ -n "${broker:-}" ] && kill "$broker" 2>/dev/null || true
  dpkg --purge spanwatch-edge >/dev/null 2>&1 || true
  rm -f /etc/spanwatch/calibration.bundle
  rm -rf "$work"
}
trap cleanup EXIT
dpkg -i "$target/debian/spanwatch-edge.deb"
unit=/usr/lib/systemd/system/spanwatch-edge.service
if command -v systemd-analyze >/dev/null 2>&1; then
  systemd-analyze verify "$unit"
  echo "deb: systemd-analyze verify $unit: ok"
else
  echo "deb: systemd-analyze not available; unit not verified"
fi
# A bundle for the packaged model (EfficientNet-Lite0), from the demo's data.
"$target/release/spanwatch" --quiet calibrate "$demo" --generator faithful --model efficientnet-lite0 -o /etc/spanwatch/calibration.bundle
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# As the service's user and groups (setpriv execs, so $! is the daemon itself).
as_service() { setpriv --reuid=spanwatch --regid=spanwatch --init-groups -- "$@"; }
as_service /usr/bin/spanwatch-edge --config /etc/spanwatch/edge.toml --broker "mqtt://127.0.0.1:$port" --check-config
mosquitto -p "$port" >"$work/mosquitto.log" 2>&1 &
broker=$!
sleep 1
mosquitto_sub -p "$port" -t 'spanwatch/+/+/metrics' -C 1 -W 120 >"$work/metrics.json" &
sub=$!
setpriv --reuid=spanwatch --regid=spanwatch --init-groups -- \
  /usr/bin/spanwatch-edge --config /etc/spanwatch/edge.toml --broker "mqtt://127.0.0.1:$port" 2>"$work/edge.log" &
edge=$!
for half in source synthetic; do
  if [ "$half" = source ]; then from="$demo/real/negative/tile_000.png"; else from="$demo/synthetic/faithful/tile_000.png"; fi
  install -o spanwatch -g spanwatch -m 0644 "$from" "/var/spool/spanwatch/.pair-0001.$half.png.partial.png"
  mv "/var/spool/spanwatch/.pair-0001.$half.png.partial.png" "/var/spool/spanwatch/pair-0001.$half.png"
done
if ! wait "$sub"; then
  echo "deb: no metrics within 120 s; the edge's log:"; cat "$work/edge.log"; exit 1
fi
echo "deb: the installed spanwatch-edge published: $(head -c 160 "$work/metrics.json")..."
kill -TERM "$edge"
if wait "$edge"; then echo "deb: SIGTERM: clean exit"; else echo "deb: the edge did not exit cleanly on SIGTERM"; cat "$work/edge.log"; exit 1; fi
edge=
