# agent-platform: every entry point a platform engineer uses. `make help` lists them.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ENV ?= local
AGAINST ?=
STACKS := dev staging prod
TOOLS_STAMP := .tools/.stamp
export PATH := $(CURDIR)/.tools/bin:$(PATH)
UV := uv run --locked --quiet

.PHONY: help tools lint typecheck test test-fast generate up down plan dr-drill bench smoke clean

help: ## List the entry points
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Re-run the installer when its pins or the lock file change, or a tool went missing.
$(TOOLS_STAMP): scripts/install-tools.sh uv.lock pyproject.toml
	@bash scripts/install-tools.sh
	@touch $@

tools: ## Install pinned helm/kubectl, checkov, Debian packages and the Python env
	@bash scripts/install-tools.sh
	@touch $(TOOLS_STAMP)

lint: $(TOOLS_STAMP) ## ruff (lint + format check)
	$(UV) ruff check .
	$(UV) ruff format --check .

typecheck: $(TOOLS_STAMP) ## mypy --strict over the Python code
	$(UV) mypy

test: lint typecheck ## The whole suite: lint, type check, pytest
	$(UV) pytest

test-fast: $(TOOLS_STAMP) ## pytest without the tests that start servers
	$(UV) pytest -m "not integration and not slow"

generate: $(TOOLS_STAMP) ## Regenerate what derives from settings.py and values.yaml (chart schema, docs)
	@$(UV) python -m tools.chart --write

up: $(TOOLS_STAMP) ## ENV=local (default): local environment; ENV=dev|staging|prod: pulumi up
	@if [ "$(ENV)" = "local" ]; then \
	  $(UV) python -m infra.local up; \
	else \
	  bash scripts/pulumi-up.sh "$(ENV)"; \
	fi

down: $(TOOLS_STAMP) ## Stop the local environment (its data stays in .local/)
	@$(UV) python -m infra.local down

plan: $(TOOLS_STAMP) ## ENV=<stack> [AGAINST=<stack>]: offline review bundle in build/plan/<stack>/
	@test "$(ENV)" != local || { echo "make plan: name a stack: make plan ENV=dev|staging|prod" >&2; exit 2; }
	@$(UV) python -m infra.plan "$(ENV)" $(if $(AGAINST),--against "$(AGAINST)")

dr-drill: $(TOOLS_STAMP) ## Backup, restore and verify against the local environment (make up first)
	@$(UV) python -m agent_service.dr.drill --env-file .local/env

bench: $(TOOLS_STAMP) ## Benchmark against langgraph dev, same graphs, one run (about 15 min)
	@$(UV) python -m benchmarks

smoke: $(TOOLS_STAMP) ## testinfra smoke suite against the local environment (make up first)
	@test -f .local/env || { echo "make smoke: .local/env not found: run make up first." >&2; exit 2; }
	SMOKE_ENV_FILE=.local/env $(UV) pytest tests/smoke --hosts=local:// -p no:cacheprovider

clean: ## Remove build output (keeps .tools and .local)
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
