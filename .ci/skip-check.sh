#!/usr/bin/env bash
# The skip path of the tests that need a program outside Rust's reach: run
# them with CI unset and a PATH that lacks those programs (a folder of links
# to everything else on PATH), and check that each one says SKIPPED, naming
# the program and its package, and passes. The full run (CI set) requires them.
set -euo pipefail
cd "$(dirname "$0")/.."
hidden="mosquitto mosquitto_sub mosquitto_pub chromium qemu-system-arm openssl"
farm=$(mktemp -d)
trap 'rm -rf "$farm"' EXIT
IFS=: read -ra dirs <<< "$PATH"
for dir in "${dirs[@]}"; do
  [ -d "$dir" ] || continue
  for program in "$dir"/*; do
    name=$(basename "$program")
    case " $hidden " in *" $name "*) continue ;; esac
    [ -x "$program" ] && [ ! -e "$farm/$name" ] && ln -s "$program" "$farm/$name"
  done
done
for program in $hidden; do
  if PATH="$farm" command -v "$program" >/dev/null; then echo "skip check: $program is still on PATH" >&2; exit 1; fi
done

# test binary, test name, and the program it must name. Each runs as part of
# --workspace, so that features unify as in the full run and nothing rebuilds.
checks=(
  "cli report_is_one_self_contained_page_that_chromium_renders chromium"
  "mcu_firmware firmware_under_qemu_scores_like_the_host_batch qemu-system-arm"
  "edge_mqtt messages_made_while_the_broker_is_away_arrive_in_order_after_it_returns_and_after_a_restart mosquitto"
  "edge_mqtt tls_to_mosquitto_with_the_ca_and_refused_without_it mosquitto"
  "edge_mqtt a_box_bridged_to_a_central_broker_delivers_every_message_in_order_across_its_restart mosquitto"
  "edge_mqtt a_good_stream_never_alerts_and_a_degraded_one_alerts_within_a_window mosquitto"
  "edge_binary the_binary_announces_itself_shuts_down_on_sigterm_and_leaves_a_last_will mosquitto"
  "edge_binary a_daemon_killed_with_the_broker_down_loses_no_message_and_resumes_on_the_same_window mosquitto"
  "edge_binary a_full_disk_pauses_taking_pairs_and_loses_nothing_and_a_failed_pair_is_reported_when_its_reason_cannot_be_written mosquitto"
)
log="$farm/log"
for check in "${checks[@]}"; do
  read -r binary name program <<< "$check"
  env -u CI PATH="$farm" cargo test --release -q --workspace --test "$binary" -- --exact "$name" > "$log" 2>&1 || {
    cat "$log"; echo "skip check: $binary::$name failed without $program" >&2; exit 1; }
  grep -q "SKIPPED: $name .*needs $program (apt-get install " "$log" || {
    cat "$log"; echo "skip check: $binary::$name did not say it skipped for $program" >&2; exit 1; }
  grep -q "test result: ok. 1 passed" "$log" || { cat "$log"; echo "skip check: $binary::$name did not pass" >&2; exit 1; }
  echo "skip check: $binary::$name passes and says: $(grep -o -m1 "SKIPPED: $name.*" "$log")"
done
