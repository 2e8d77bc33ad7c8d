# The front door. `make demo` and `make test` do all the set-up they need on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
BIN         := $(VENV)/bin
STACK_ENV   := .local/stack.env
# Runs a command with the local stack's environment (written by `fraud-stack up`).
WITH_STACK  := set -a && . ./$(STACK_ENV) && set +a &&
PYTEST_ARGS ?=
ROWS        ?= 1000000
CARDS       ?= 1000000
SERVING_CARDS ?= 100000
TRAINING_ROWS ?= 100000
# The day `make airflow-chain` processes, and its training params (the demo's 16 days).
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

down: ## Stop what `make up` and `make demo` started (Redis, S3, the scoring API)
	@if [ -x $(BIN)/fraud-stack ]; then $(BIN)/fraud-stack down; fi

status: ## Show the local stack's services, addresses and memory
	@$(BIN)/fraud-stack status

demo: install ## The whole loop on the local stack, end to end
	@$(BIN)/fraud-demo

test: install ## All tests: unit, integration (real Redis, S3, Spark), DAGs
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

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
	@$(WITH_STACK) $(BIN)/python -c "import json; from feature_pipeline.feature_store import \
	  apply_definitions as a; print(json.dumps(a(), indent=2, default=str))"

materialize: up ## Load the newest feature values up to now into Redis (incremental)
	@$(WITH_STACK) $(BIN)/python -c "import json, datetime as d; from feature_pipeline.materialize \
	  import materialize as m; print(json.dumps(m(d.datetime.now(d.UTC)), default=str))"

parity: up ## Online vs offline vectors of sampled cards must be equal, value for value
	@$(WITH_STACK) $(BIN)/python -m feature_pipeline.parity

check-infra: ## terraform fmt and checkov over terraform/ (no cloud needed)
	@scripts/check-terraform.sh

bench-features: up ## Feature pipeline benchmark: ROWS transactions landing -> features
	@$(WITH_STACK) $(BIN)/python -m benchmarks.feature_pipeline --rows $(ROWS)

bench-materialize: up ## Our Redis writer against Feast's engine (CARDS=1000000)
	@$(WITH_STACK) $(BIN)/python -m benchmarks.materialize --cards $(CARDS)

bench-serving: up ## Scoring API against `feast serve` (SERVING_CARDS=100000; after make demo)
	@$(WITH_STACK) $(BIN)/python -m benchmarks.serving --cards $(SERVING_CARDS)

bench-training: up ## Point-in-time training set and training (TRAINING_ROWS; see its --help)
	@$(WITH_STACK) $(BIN)/python -m benchmarks.training_set --rows $(TRAINING_ROWS)

serve: up ## The scoring API in the foreground on http://127.0.0.1:8000 (docs at /docs)
	@$(WITH_STACK) exec $(BIN)/inference-pipeline serve --port 8000

airflow-chain: up ## Run every DAG for DATE through Airflow's API (with make airflow running)
	@$(WITH_STACK) $(BIN)/python -m fraud_demo.airflow_chain --date $(DATE) \
	  --training '$(TRAINING_PARAMS)'

mlflow: up ## MLflow UI on http://127.0.0.1:5000, on the local tracking store
	@$(WITH_STACK) exec $(BIN)/mlflow ui --backend-store-uri "$$MLFLOW_TRACKING_URI" \
	  --host 127.0.0.1 --port 5000

airflow: up ## Airflow standalone (UI on http://127.0.0.1:8080) with the project's DAGs
	@$(WITH_STACK) AIRFLOW__CORE__PARALLELISM=4 AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG=2 \
	  AIRFLOW__API__HOST=127.0.0.1 PATH="$(CURDIR)/$(BIN):$$PATH" exec scripts/airflow-standalone.sh
