#!/usr/bin/env bash
# Builds vegeta, the open-loop HTTP load generator of benchmarks/saturation.py, at a pinned
# release into the cache outside the clone (like MinIO in install.sh and Prometheus in
# install-prometheus.sh), with `go install` (which checks the module and its dependencies
# against the Go checksum database). Prints the folder holding the executable. Exit status
# 3 (and a message) when Go is missing: the benchmark says so and measures nothing.
#   scripts/install-vegeta.sh
set -euo pipefail
CACHE="${FRAUD_CACHE_DIR:-$HOME/.cache/fraud-feature-store}"
VEGETA_MODULE="github.com/tsenart/vegeta/v12@v12.12.0"
BIN="$CACHE/bin/vegeta-${VEGETA_MODULE##*@}"

if [ -x "$BIN/vegeta" ]; then echo "$BIN"; exit 0; fi
if ! command -v go >/dev/null; then
  echo "Go is not installed: vegeta ($VEGETA_MODULE) cannot be built; install Go and rerun." >&2
  exit 3
fi
mkdir -p "$BIN"
started=$(date +%s)
echo "Building vegeta with go install $VEGETA_MODULE (once)" >&2
GOBIN="$BIN" GOFLAGS=-trimpath go install "$VEGETA_MODULE"
echo "Built vegeta in $(( $(date +%s) - started ))s" >&2
echo "$BIN"
