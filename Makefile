# Two commands matter: `make dev` (local stack) and `make test`. Everything else supports them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAGE ?= dev
PORT ?= 4000
LAYER_DIR := build/layer/python

.PHONY: install dev test lint format layer preview deploy clean chromium pulumi-cli

## install: virtualenv with the pinned Python deps, the npm packages (test validators, the console's
## vendored libraries), Debian's chromium for the console's browser tests, and the AWS CLI (its own
## virtualenv: awscli pins botocore exactly) that the docs' --endpoint-url examples use
AWSCLI_VENV := .venv-awscli
install: $(VENV)/.installed node_modules/.installed chromium $(AWSCLI_VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt lambdas/requirements.txt sdk/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

$(AWSCLI_VENV)/.installed: requirements-awscli.txt
	@test -x $(AWSCLI_VENV)/bin/python || $(PYTHON) -m venv $(AWSCLI_VENV)
	$(AWSCLI_VENV)/bin/python -m pip install --quiet -r requirements-awscli.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The browser tests drive Debian's chromium through Playwright (never a browser Playwright downloads);
# they fail without it. Installed with apt-get when missing (as root, or through sudo).
CHROMIUM ?= /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }
	@test -x $(CHROMIUM) || { echo "$(CHROMIUM) is missing: install Debian's chromium" >&2; exit 1; }

## dev: run the whole stack locally (embedded AWS) and print its outputs; Ctrl-C stops it.
## Its data is kept in .local/state/$(STAGE) across restarts; FRESH=1 starts empty.
FRESH ?=
dev: install
	STAGE=$(STAGE) PORT=$(PORT) FRESH=$(FRESH) $(PY) -m local

## test: every test layer (unit, infra under mocks, integration on the embedded engine, end-to-end)
test: install
	$(PY) -m ruff check .
	$(PY) -m pytest

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format:
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

## layer: build the Lambda dependency layer for the Lambda platform (needed before `pulumi up`)
layer:
	rm -rf build/layer
	$(PY) -m pip install --quiet --target $(LAYER_DIR) --platform manylinux2014_x86_64 \
		--implementation cp --python-version 3.12 --only-binary=:all: -r lambdas/requirements.txt

## preview / deploy: the real thing, per stage (needs the Pulumi CLI and AWS credentials)
## The Pulumi CLI is checked first, before the layer takes its time to build.
pulumi-cli:
	@command -v pulumi >/dev/null 2>&1 || { echo "the Pulumi CLI is not installed: curl -fsSL https://get.pulumi.com | sh (or see https://www.pulumi.com/docs/install/), then open a new shell" >&2; exit 127; }

preview: pulumi-cli install layer
	pulumi preview --stack $(STAGE)

deploy: pulumi-cli install layer
	pulumi up --stack $(STAGE)

clean:
	rm -rf build .local .pytest_cache .ruff_cache
