#!/usr/bin/env bash
# Install everything the project needs on a fresh Debian/Ubuntu machine, idempotently:
# system packages (Redis, a JDK for Spark, Maven), the locked Python environment (.venv),
# the MinIO server binary and Spark's s3a jars. Heavy downloads and builds are cached
# outside the clone (~/.cache), so a second clone on the same machine installs in seconds.
set -euo pipefail

cd "$(dirname "$0")/.."
CACHE="${FRAUD_CACHE_DIR:-$HOME/.cache/fraud-feature-store}"
UV_VERSION="0.13.9"
# MinIO's community edition ships as source: a pinned commit, built with `go install`
# (which checks the module and its dependencies against the Go checksum database).
MINIO_MODULE="github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"
PYTHON="${PYTHON:-python3.11}"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- system packages -----------------------------------------------------------------
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
# wrk: the HTTP load generator of benchmarks/serving.py (C, so it leaves the cores to
# the servers it measures).
command -v wrk >/dev/null || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
  say "Installing system packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- Python environment from the lock file ---------------------------------------------
if ! command -v uv >/dev/null; then
  say "Installing uv $UV_VERSION"
  "$PYTHON" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
fi
stamp=".venv/.installed-$(cat requirements/lock.txt pyproject.toml scripts/install.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  say "Installing the locked Python environment into .venv (first time: about 2 minutes)"
  [ -x .venv/bin/python ] || uv venv -q --python "$PYTHON" .venv
  # --require-hashes: every wheel must match a hash of the lock (uv pip compile
  # --generate-hashes), or nothing is installed.
  uv pip install -q --require-hashes --python .venv/bin/python -r requirements/lock.txt
  uv pip install -q --python .venv/bin/python --no-deps -e .
  # Bytecode now, once: where PYTHONDONTWRITEBYTECODE is set (as in many CI images) Python
  # never caches it, and every process would compile Airflow, Feast and MLflow from source
  # again (about 10 s of each pipeline step and of the API's start-up on 2 cores).
  say "Compiling the environment's bytecode"
  .venv/bin/python -m compileall -q -j0 .venv/lib >/dev/null
  rm -f .venv/.installed-* && touch "$stamp"
fi

# --- MinIO -----------------------------------------------------------------------------
if [ ! -x "$CACHE/bin/minio" ]; then
  if command -v go >/dev/null; then
    say "Building MinIO with go install (once, about 4 minutes on 2 cores)"
    mkdir -p "$CACHE/bin"
    GOBIN="$CACHE/bin" GOFLAGS=-trimpath go install "$MINIO_MODULE"
  else
    echo "Go is not installed: MinIO cannot be built. The local stack can use SeaweedFS" \
         "instead (installed with the Python environment): export FRAUD_STACK_S3_SERVER=seaweedfs"
  fi
fi

# --- Spark's s3a jars ------------------------------------------------------------------
SPARK_JARS_DIR="${SPARK_JARS_DIR:-$CACHE/jars}" scripts/fetch-spark-jars.sh >/dev/null
say "Installed. Start the stack with 'make up'."
