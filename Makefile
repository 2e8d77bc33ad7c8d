# The front door. `make demo` and `make test` do all the set-up they need on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
BIN         := $(VENV)/bin
STACK_ENV   := .local/stack.env
# Runs a command with the local stack's environment (written by `fraud-stack up`).
WITH_STACK  := set -a && . ./$(STACK_ENV) && set +a &&
PYTEST_ARGS ?=
# Rows of the fault suite's large landing file (a tenth of them bad).
FAULTS_BIG_ROWS ?= 1000000
ROWS        ?= 1000000
CARDS       ?= 1000000
SERVING_CARDS ?= 100000
TRAINING_ROWS ?= 100000
BYOD_ROWS   ?= 200000
BYOD_ARGS   ?=
# The day `make airflow-chain` processes, and its training params (the demo's 16 days).
PIT_ROWS ?= 1000000
PIT_FILE_ROWS ?= 0
DATE        ?= $(shell date -u -d '9 days ago' +%F)
TRAINING_PARAMS ?= {"train_days": 7, "test_days": 2, "label_delay_days": 7}

.PHONY: help install up down status demo test test-unit lint check-infra airflow mlflow \
        serve airflow-chain feast-plan feast-apply materialize parity bench-features bench-materialize \
        bench-serving bench-training

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

install: ## Install system packages, the locked Python env, MinIO and Spark's s3a jars
	@scripts/install.sh

up: install ## Start the local stack (Redis, S3) as processes; idempotent
	@$(BIN)/fraud-stack up

down: ## Stop what `make up`, `make demo` and `make monitor` started (Redis, S3, the API, Prometheus)
	@if [ -x $(BIN)/fraud-stack ]; then $(BIN)/fraud-stack down; fi

status: ## Show the local stack's services, addresses and memory
	@$(BIN)/fraud-stack status

demo: install ## The whole loop on the local stack, end to end (observed by Prometheus once `make monitor` built it)
	@if bin="$$(scripts/install-prometheus.sh --built prometheus pushgateway)"; then \
	  export FRAUD_STACK_MONITORING_BIN="$$bin"; fi; $(BIN)/fraud-demo

.PHONY: byod
byod: up ## The whole loop on an external source: SOURCE=mapping.yaml TRAIN=a:b TEST=a:b SCORE=a:b
	@$(WITH_STACK) $(BIN)/python -m fraud_demo.byod --source $(SOURCE) --train $(TRAIN) \
	  --test $(TEST) --score $(SCORE) $(BYOD_ARGS)

.PHONY: byod-example
byod-example: up ## `make byod` on a simulated external-shaped source (BYOD_ROWS, 60 days)
	@$(BIN)/python -m benchmarks.external_source --out .local/byod-example --rows $(BYOD_ROWS) \
	  --days 60 --start 2026-01-01 --shape pandas_ns
	@$(MAKE) --no-print-directory byod SOURCE=.local/byod-example/mapping.json \
	  TRAIN=2026-01-01:2026-02-07 TEST=2026-02-15:2026-02-24 SCORE=2026-02-25:2026-03-01

test: install ## All tests but the fault suite (`make faults`): unit, integration, DAGs
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

.PHONY: faults
faults: install ## Fault suite on the real local stack: a table, then one JSON line (FAULTS_BIG_ROWS)
	@rm -f .local/faults/results.json; \
	  FAULTS_BIG_ROWS=$(FAULTS_BIG_ROWS) $(BIN)/python -m pytest tests/faults -m faults -q \
	  -p no:cacheprovider; rc=$$?; $(BIN)/python -m tests.faults.report --pytest-status $$rc

test-unit: install ## Unit tests only (no services; a local Spark for the feature functions)
	@$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

lint: install ## Static checks: ruff (lint and format), mypy, import contracts, declared dependencies
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy
	@$(BIN)/lint-imports
	@$(BIN)/deptry .

feast-plan: up ## What `feast apply` would change in the registry
	@$(WITH_STACK) cd feature_repo && ../$(BIN)/feast plan

.PHONY: feast-plan-check
feast-plan-check: up ## `feast plan` against a scratch registry: a broken repo fails before apply
	@scratch=$$(mktemp -d) && trap 'rm -rf "$$scratch"' EXIT && $(WITH_STACK) cd feature_repo && \
	  FEAST_REGISTRY_PATH="sqlite:///$$scratch/registry.db" ../$(BIN)/feast plan

feast-apply: up ## Check the definitions against S3, then apply them to the registry
	@$(WITH_STACK) $(BIN)/feature-pipeline apply

materialize: up ## Load the newest feature values up to now into Redis (incremental)
	@$(WITH_STACK) $(BIN)/feature-pipeline materialize

parity: up ## Online vs offline vectors of sampled cards must be equal, value for value
	@$(WITH_STACK) $(BIN)/feature-pipeline parity

check-infra: ## terraform fmt and checkov over terraform/ (no cloud needed)
	@scripts/check-terraform.sh

bench-features: up ## Feature pipeline benchmark: ROWS transactions landing -> features
	@$(WITH_STACK) $(BIN)/python -m benchmarks.feature_pipeline --rows $(ROWS)

bench-materialize: up ## Our Redis writer against Feast's engine (CARDS=1000000)
	@$(WITH_STACK) $(BIN)/python -m benchmarks.materialize --cards $(CARDS)

bench-serving: up ## Scoring API against `feast serve` (SERVING_CARDS=100000; after make demo)
	@$(WITH_STACK) $(BIN)/python -m benchmarks.serving --cards $(SERVING_CARDS)

.PHONY: bench-pit
bench-pit: up ## Point-in-time join: PIT_ROWS (1M) entity rows on 10M-transaction tables, checked
	@$(WITH_STACK) $(BIN)/python -m benchmarks.point_in_time run --rows $(PIT_ROWS) --file-rows $(PIT_FILE_ROWS)

.PHONY: bench-cold-start
bench-cold-start: up ## Rebuild the online event state of COLD_CARDS (100000) cards from bronze on S3
	@$(WITH_STACK) $(BIN)/python -m benchmarks.cold_start --cards $(or $(COLD_CARDS),100000)

.PHONY: bench-replay
bench-replay: up ## Replay the demo's held-back day through /v1/score: served vs offline vectors (after make demo)
	@$(WITH_STACK) $(BIN)/python -m benchmarks.staleness

.PHONY: backfill-events
backfill-events: up ## Rebuild the online event state from the offline store (UNTIL=yyyy-mm-dd)
	@$(WITH_STACK) $(BIN)/feature-pipeline backfill-events --until $(UNTIL)

bench-training: up ## Point-in-time training set and training (TRAINING_ROWS; see its --help)
	@$(WITH_STACK) $(BIN)/python -m benchmarks.training_set --rows $(TRAINING_ROWS)

.PHONY: bench-byod
bench-byod: up ## Ingest + features of a 7-day window of a 2M-row external source, three ways
	@$(WITH_STACK) $(BIN)/python -m benchmarks.byod_scale


serve: up ## The scoring API in the foreground on http://127.0.0.1:8000 (docs at /docs)
	@$(WITH_STACK) exec $(BIN)/inference-pipeline serve --port 8000

airflow-chain: up ## Run every DAG for DATE through Airflow's API (with make airflow running)
	@$(WITH_STACK) $(BIN)/python -m fraud_demo.airflow_chain --date $(DATE) \
	  --training '$(TRAINING_PARAMS)'

.PHONY: monitor
monitor: up ## Prometheus and a Pushgateway on the local stack (compose's config and rules), then the dashboard's queries
	@bin="$$(scripts/install-prometheus.sh prometheus pushgateway)" && \
	  $(BIN)/python -m fraud_platform.devstack.monitor up --bin-dir "$$bin"

.PHONY: monitor-down
monitor-down: ## Stop the Prometheus and Pushgateway that `make monitor` started
	@$(BIN)/python -m fraud_platform.devstack.monitor down

.PHONY: test-alerts
test-alerts: ## promtool: check the Prometheus config and test the alert rules (skipped without Go)
	@bin="$$(scripts/install-prometheus.sh promtool)"; rc=$$?; \
	  if [ $$rc -eq 3 ]; then echo "test-alerts skipped: Go is not installed"; exit 0; fi; \
	  [ $$rc -eq 0 ] && $(BIN)/python -m fraud_platform.devstack.monitor check --promtool "$$bin/promtool"

mlflow: up ## MLflow UI on http://127.0.0.1:5000, on the local tracking store
	@$(WITH_STACK) exec $(BIN)/mlflow ui --backend-store-uri "$$MLFLOW_TRACKING_URI" \
	  --host 127.0.0.1 --port 5000

airflow: up ## Airflow standalone (UI on http://127.0.0.1:8080) with the project's DAGs
	@$(WITH_STACK) AIRFLOW__CORE__PARALLELISM=4 AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG=2 \
	  AIRFLOW__API__HOST=127.0.0.1 PATH="$(CURDIR)/$(BIN):$$PATH" exec scripts/airflow-standalone.sh
