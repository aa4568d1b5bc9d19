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

.PHONY: help tools lint typecheck test test-fast up down plan dr-drill bench smoke clean

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

up: $(TOOLS_STAMP) ## ENV=local (default): local environment; ENV=dev|staging|prod: pulumi up
	@if [ "$(ENV)" = "local" ]; then \
	  echo "make up ENV=local: the local environment is not built yet (issue: make up)." >&2; exit 2; \
	else \
	  bash scripts/pulumi-up.sh "$(ENV)"; \
	fi

down: ## Stop the local environment
	@echo "make down: the local environment is not built yet (issue: make up)." >&2; exit 2

plan: $(TOOLS_STAMP) ## ENV=<stack> [AGAINST=<stack>]: offline review bundle in build/plan/<stack>/
	@echo "make plan: not built yet (issue: policy as code and make plan)." >&2; exit 2

dr-drill: $(TOOLS_STAMP) ## Backup, restore and verify against the local environment
	@echo "make dr-drill: not built yet (issue: disaster recovery)." >&2; exit 2

bench: $(TOOLS_STAMP) ## Benchmark against langgraph dev, same graphs, one run
	@echo "make bench: not built yet (issue: make bench)." >&2; exit 2

smoke: $(TOOLS_STAMP) ## testinfra smoke suite against the local environment
	@echo "make smoke: not built yet (issue: make up)." >&2; exit 2

clean: ## Remove build output (keeps .tools and .local)
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
