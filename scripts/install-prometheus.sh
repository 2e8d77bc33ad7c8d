#!/usr/bin/env bash
# Builds Prometheus, promtool and the Pushgateway at pinned releases into the cache outside
# the clone (like MinIO in install.sh), for `make monitor`, `make test-alerts` and the
# run-metrics tests. Prints the folder holding the executables. Prometheus's Go module has
# a replace directive, so `go install module@version` refuses it: the module is fetched
# with `go mod download` (the Go module proxy) and built as the main module; the
# Pushgateway installs with `go install`. Exit status 3 (and a message) when Go is
# missing: callers skip rather than fail. With --built it builds nothing: it prints the
# folder if every tool named is already there, and exits 4 otherwise.
#   scripts/install-prometheus.sh [--built] [promtool] [prometheus] [pushgateway]
set -euo pipefail
CACHE="${FRAUD_CACHE_DIR:-$HOME/.cache/fraud-feature-store}"
# Prometheus v3.15.1 (Go module versions are v0.3XX.Y for 3.XX.Y) and Pushgateway v1.11.1:
# the compose stack runs the images of the same releases (docker/docker-compose.yml).
PROMETHEUS_MODULE="github.com/prometheus/prometheus@v0.315.1"
PUSHGATEWAY_MODULE="github.com/prometheus/pushgateway@v1.11.1"
BIN="$CACHE/bin/prometheus-${PROMETHEUS_MODULE##*@}"
built_only=false
if [ "${1:-}" = --built ]; then built_only=true; shift; fi
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(promtool prometheus)

missing=()
for tool in "${wanted[@]}"; do [ -x "$BIN/$tool" ] || missing+=("$tool"); done
if [ ${#missing[@]} -eq 0 ]; then echo "$BIN"; exit 0; fi
if $built_only; then exit 4; fi
if ! command -v go >/dev/null; then
  echo "Go is not installed: ${missing[*]} cannot be built (install Go, or run the compose" \
       "stack's images)." >&2
  exit 3
fi
mkdir -p "$BIN"
packages=()
for tool in "${missing[@]}"; do
  started=$(date +%s)
  if [ "$tool" = pushgateway ]; then
    echo "Building pushgateway with go install $PUSHGATEWAY_MODULE (once)" >&2
    GOBIN="$BIN" GOFLAGS=-trimpath go install "$PUSHGATEWAY_MODULE"
    echo "Built pushgateway in $(( $(date +%s) - started ))s" >&2
  else
    packages+=("./cmd/$tool")
  fi
done
if [ ${#packages[@]} -gt 0 ]; then
  started=$(date +%s)
  echo "Building ${packages[*]} of $PROMETHEUS_MODULE (once; minutes on 2 cores)" >&2
  source_dir=$(cd / && go mod download -json "$PROMETHEUS_MODULE" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  (cd "$source_dir" && GOWORK=off GOFLAGS=-trimpath go build -o "$BIN/" "${packages[@]}")
  echo "Built ${packages[*]} in $(( $(date +%s) - started ))s" >&2
fi
echo "$BIN"
