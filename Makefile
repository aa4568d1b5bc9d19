# agent-platform: every entry point a platform engineer uses. `make help` lists them.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Only from the command line (`make deploy STACK=dev`): a STACK or AGAINST exported by the
# caller's shell must not pick the target of a deploy.
STACK := $(if $(filter command line,$(origin STACK)),$(STACK),)
AGAINST := $(if $(filter command line,$(origin AGAINST)),$(AGAINST),)
PHASE := $(if $(filter command line,$(origin PHASE)),$(PHASE),all)
IMAGE_TAG := $(if $(filter command line,$(origin IMAGE_TAG)),$(IMAGE_TAG),)
IMAGE_DIGEST := $(if $(filter command line,$(origin IMAGE_DIGEST)),$(IMAGE_DIGEST),)
STACKS := $(sort $(patsubst Pulumi.%.yaml,%,$(wildcard Pulumi.*.yaml)))
TOOLS_STAMP := .tools/.stamp
export PATH := $(CURDIR)/.tools/bin:$(PATH)
UV := uv run --locked --quiet
# What `make deploy` loads: the Pulumi program (infra), the policy pack (policy) and the
# preflight in tools/deploy; no test tools, so the deploy runner needs only uv and PyPI.
DEPLOY_GROUPS := --no-default-groups --group infra --group policy

.PHONY: help tools deploy-env plan-env lint typecheck test test-fast generate up down rotate deploy plan dr-drill bench smoke clean stack-given image \
	cluster cluster-down cluster-build

help: ## List the entry points
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Re-run the installer when its pins or the lock file change, or a tool went missing.
$(TOOLS_STAMP): tools/install/install-tools.sh uv.lock pyproject.toml
	@bash tools/install/install-tools.sh
	@touch $@

tools: ## Install pinned helm/kubectl, checkov, Debian packages and the Python env
	@bash tools/install/install-tools.sh
	@touch $(TOOLS_STAMP)

lint: $(TOOLS_STAMP) ## ruff (lint + format check)
	$(UV) ruff check .
	$(UV) ruff format --check .

typecheck: $(TOOLS_STAMP) ## mypy --strict over the Python code
	$(UV) mypy

test: lint typecheck cluster-build ## The whole suite: lint, type check, pytest
	$(UV) pytest

test-fast: $(TOOLS_STAMP) ## pytest without the tests that start servers
	$(UV) pytest -m "not integration and not slow"

generate: $(TOOLS_STAMP) ## Regenerate what derives from settings.py and values.yaml (chart schema, docs)
	@$(UV) python -m tools.chart --write

up: $(TOOLS_STAMP) ## Start the local environment (PostgreSQL, Redis, S3, the service) in .local/
	@$(UV) python -m tools.local up

down: $(TOOLS_STAMP) ## Stop the local environment (its data stays in .local/)
	@$(UV) python -m tools.local down

rotate: $(TOOLS_STAMP) ## Rotate the running local environment's PostgreSQL and Redis passwords, no restart
	@$(UV) python -m tools.local rotate

# A prerequisite listed first: a missing or unknown STACK fails before anything is installed.
stack-given:
	@test -n "$(STACK)" || { echo "make $(MAKECMDGOALS): name a stack: STACK=<stack>, one of: $(STACKS)." >&2; exit 2; }
	@case " $(STACKS) " in *" $(STACK) "*) ;; *) echo "make $(MAKECMDGOALS): no stack '$(STACK)' (no Pulumi.$(STACK).yaml); the stacks are: $(STACKS)." >&2; exit 2;; esac

# deploy and plan install only what they run (tools/install/install-tools.sh <verb>): the deploy
# runner may be Amazon Linux, macOS or a non-root user, with no apt, npm or go.
deploy-env:
	@bash tools/install/install-tools.sh deploy $(DEPLOY_GROUPS)

plan-env:
	@bash tools/install/install-tools.sh plan

deploy: stack-given deploy-env ## STACK=<stack> [PHASE=cloud] [IMAGE_TAG= IMAGE_DIGEST=]: preflight, then pulumi up --policy-pack policies
	@$(UV) $(DEPLOY_GROUPS) python -m tools.deploy "$(STACK)" --phase "$(PHASE)" $(if $(IMAGE_TAG),--image-tag "$(IMAGE_TAG)") $(if $(IMAGE_DIGEST),--image-digest "$(IMAGE_DIGEST)") $(if $(CI),--yes)

plan: stack-given plan-env ## STACK=<stack> [AGAINST=<stack>]: offline review bundle in build/plan/<stack>/
	@$(UV) python -m tools.plan "$(STACK)" $(if $(AGAINST),--against "$(AGAINST)")

SCENARIO ?= dump
dr-drill: $(TOOLS_STAMP) ## [SCENARIO=dump|pitr|region-loss] Restore and verify against the local environment (make up first)
	@$(UV) python -m tools.drill --scenario "$(SCENARIO)" --env-file .local/env

bench: $(TOOLS_STAMP) ## Benchmark against langgraph dev and the in-process limit, same graphs (about 25 min)
	@$(UV) python -m tools.bench

smoke: $(TOOLS_STAMP) ## testinfra smoke suite against the local environment (make up first)
	@test -f .local/env || { echo "make smoke: .local/env not found: run make up first." >&2; exit 2; }
	SMOKE_ENV_FILE=.local/env $(UV) pytest tests/smoke --hosts=local:// -p no:cacheprovider

image: $(TOOLS_STAMP) ## [RDS_CA_BUNDLE=<path>] Build the service image with podman: build/image/{agent-service.tar,sbom.cdx.json}
	@$(UV) python -m tools.image $(if $(RDS_CA_BUNDLE),--rds-ca-bundle "$(RDS_CA_BUNDLE)")

cluster-build: $(TOOLS_STAMP) ## Build the test cluster's binaries once per version (Go 1.26; ~/.cache/agent-platform)
	@$(UV) python -m tools.cluster build

cluster: cluster-build ## Loopback Kubernetes control plane + kwok nodes + Flagger; kubeconfig in .local/cluster/
	@$(UV) python -m tools.cluster up

cluster-down: ## Stop the cluster started by make cluster (its data stays in .local/cluster/)
	@$(UV) python -m tools.cluster down

clean: ## Remove build output (keeps .tools and .local)
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
