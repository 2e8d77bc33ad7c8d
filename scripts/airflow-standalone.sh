#!/usr/bin/env bash
# `airflow standalone` for a person who wants the UI: its own process group, so that Ctrl-C
# (or `kill` of this script) stops every Airflow process it started, even the ones
# standalone itself leaves behind when interrupted.
set -uo pipefail
setsid airflow standalone &
leader=$!
stop() {
  trap - INT TERM
  echo "stopping Airflow..."
  kill -INT -- "-$leader" 2>/dev/null
  for _ in $(seq 1 30); do
    pgrep -g "$leader" >/dev/null || exit 0
    sleep 0.5
  done
  kill -KILL -- "-$leader" 2>/dev/null
  exit 0
}
trap stop INT TERM
wait "$leader"
