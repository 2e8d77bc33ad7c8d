# syntax=docker/dockerfile:1.7
# The scoring API image (also the MLflow server's image in docker-compose.yml).
#
#   docker build -f docker/api.Dockerfile -t fraud-feature-store/api:0.1.0 .
#
# Builder: resolves the serving extra of the project alone (the API, Feast's client, XGBoost
# and MLflow; no Spark, no Airflow, no Great Expectations) with every version constrained to
# requirements/lock.txt, checks that the result really is a subset of the lock, and installs
# it into /opt/venv.
# Runtime: python slim, the venv, the code and the Feast repo, as a non-root user.
# No secret is baked in: every credential comes from the environment at run time.

# Pinned by tag and by the digest of its multi-architecture index (a re-pushed tag cannot
# change what is built).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

FROM ${PYTHON_IMAGE} AS builder

# pipefail: a failing command inside a pipe fails the build.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ARG UV_VERSION=0.13.8
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never

RUN pip install "uv==${UV_VERSION}"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/lock.txt requirements/lock.txt

# Dependencies first, in their own layer: code changes do not reinstall them.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip compile pyproject.toml \
        --extra serving \
        --constraint requirements/lock.txt \
        --python-version 3.11 --no-header --no-annotate --quiet \
        --output-file /tmp/serving-requirements.txt \
 && grep -E '^[A-Za-z0-9]' /tmp/serving-requirements.txt | sort > /tmp/serving.sorted \
 && grep -E '^[A-Za-z0-9]' requirements/lock.txt | sed 's/ *\\$//; s/ *;.*$//' | sort > /tmp/lock.sorted \
 && not_locked="$(comm -23 /tmp/serving.sorted /tmp/lock.sorted)" \
 && if [ -n "${not_locked}" ]; then \
        echo "Not in requirements/lock.txt (re-run the lock):" >&2; \
        echo "${not_locked}" >&2; \
        exit 1; \
    fi \
 && awk 'NR == FNR { wanted[$1] = 1; next } /^[A-Za-z0-9]/ { keep = ($1 in wanted) } \
        keep && !/^ *#/' /tmp/serving.sorted requirements/lock.txt > /tmp/serving-locked.txt \
 && uv venv /opt/venv \
 && uv pip install --python /opt/venv/bin/python --no-deps --require-hashes \
        --requirement /tmp/serving-locked.txt

COPY fraud_platform ./fraud_platform
COPY feature_pipeline ./feature_pipeline
COPY training_pipeline ./training_pipeline
COPY inference_pipeline ./inference_pipeline
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --python /opt/venv/bin/python --no-deps .


FROM ${PYTHON_IMAGE} AS runtime

# libgomp: OpenMP runtime for XGBoost. curl is deliberately absent; health checks use Python.
# Debian package versions are fixed by the pinned base image (DL3008).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install --yes --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
COPY --chown=root:root feature_repo ./feature_repo

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp

# The containers run with a read-only root file system (compose read_only, ECS
# readonlyRootFilesystem); /tmp is the one writable path (MLflow's model downloads).
# Declared as a volume so that ECS populates its task volume with this mode (1777).
VOLUME ["/tmp"]

USER 10001:10001
EXPOSE 8080

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]

# One process per container; scale with replicas. Proxy headers are trusted because the
# container is only reachable through the load balancer (ALB on AWS). The same entry point
# as outside a container and in docker-compose.yml: JSON logs, uvloop and httptools, and a
# keep-alive longer than the balancer's (uvicorn's own 5 s default resets requests the
# balancer sends on a connection the server is closing).
CMD ["inference-pipeline", "serve", "--host", "0.0.0.0", "--port", "8080", "--proxy-headers"]
