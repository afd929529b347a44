# hpc-stack. `make` lists the targets. `make up` and `make test` do all the set-up they need:
# a virtualenv with the package, the Docker engine (installed and started as root on Debian when
# missing), the Debian base image (pulled, or made with debootstrap when no registry answers).
SHELL := /bin/bash
.DEFAULT_GOAL := help
.ONESHELL:
# One shell per recipe, stopping at the first failing line.
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HPCSTACK := $(VENV)/bin/hpcstack
CONFIG ?= stack.yaml
# The base image the Dockerfiles start from (debian:<suite>-slim for the definition's Slurm release).
BASE_IMAGE ?= $(shell $(PY) -c 'import sys; sys.path.insert(0, "generator"); from hpcstack.definition.load import load_stack; from pathlib import Path; print(load_stack(Path("$(CONFIG)")).base_image)' 2>/dev/null || echo debian:forky-slim)
# Image builds add apt options only for a frozen Debian mirror: hpcstack works that out when it
# builds (after `engine` has refreshed apt's lists); set HPCSTACK_APT_OPTIONS to override.
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: help venv engine base-image generate check-generated images up demo down status test \
        test-unit test-multihost lint bench doctor gpu-smoke clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-16s\033[0m %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## a virtualenv with hpcstack and its test tools
$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: install Python 3.11+ (Debian: apt-get install python3 python3-venv)"; exit 1; }
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: Python 3.11+ needed, $(PYTHON) is $$($(PYTHON) -V)"; exit 1; }
	$(PYTHON) -m venv $(VENV) || { echo "error: cannot create a virtualenv (Debian: apt-get install python3-venv)"; exit 1; }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

engine: ## install (as root on Debian) and start Docker engine, compose v2, buildx, debootstrap
	scripts/install-docker.sh

base-image: engine ## the Debian base image: pulled, or made locally with debootstrap
	scripts/base-image.sh $(BASE_IMAGE)

generate: venv ## write compose/, images/, slurm/, wireguard/, prometheus/, grafana/ from stack.yaml
	$(HPCSTACK) generate -c $(CONFIG)

check-generated: venv ## fail if the committed generated files differ from what generate writes
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT
	git ls-files -z | xargs -0 -I{} cp --parents {} "$$tmp"/ 2>/dev/null
	(cd "$$tmp" && $(CURDIR)/$(HPCSTACK) generate -c $(CONFIG) >/dev/null 2>&1)
	changes=$$(diff -r -q -x secrets -x .git -x '*.pyc' -x __pycache__ -x .venv -x 'applied-*' . "$$tmp" | grep -v '^Only in \.[:/]' || true)
	if [ -n "$$changes" ]; then
	  echo "$$changes"; echo "error: committed output differs from 'make generate' (run it and commit)"; exit 1
	fi
	echo "generated files are up to date"

images: generate base-image ## build the images (make push pushes them to images.registry)
	$(HPCSTACK) images

push: generate base-image ## build and push the images to images.registry
	$(HPCSTACK) images --push

up: generate base-image ## start the cluster from stack.yaml and wait until every node is idle
	$(HPCSTACK) up

demo: venv ## run the ML demo across the compute nodes; results shown on the controller
	$(HPCSTACK) demo

status: venv ## sites, services, nodes, jobs, tunnel
	$(HPCSTACK) status

down: venv ## stop the cluster (volumes kept; `hpcstack down --volumes` deletes them)
	$(HPCSTACK) down

doctor: venv ## check this host: Docker, compose, NVIDIA driver and toolkit, WireGuard
	$(HPCSTACK) doctor

gpu-smoke: venv ## on an NVIDIA GPU host: one-node GPU site, demo on GPU vs CPU, isolation
	HPCSTACK=$(CURDIR)/$(HPCSTACK) scripts/gpu-smoke.sh

test: venv base-image ## every test, the Docker and multi-host end-to-end tests included
	$(PY) -m tests.multihost.harness --cleanup
	PY=$(PY) scripts/run-tests.sh $(PYTEST_ARGS)

test-multihost: venv base-image ## separate hosts: namespaces, an engine each, NAT (root; part of test)
	$(PY) -m tests.multihost.harness --cleanup
	$(PY) -m pytest -m multihost $(PYTEST_ARGS) tests/test_multihost_harness.py tests/test_multihost_e2e.py tests/test_multihost_bastion.py

test-unit: venv ## the tests that need no Docker engine
	$(PY) -m pytest -m 'not docker' $(PYTEST_ARGS)

lint: venv ## ruff, mypy, shellcheck, terraform fmt + checkov + HCL assertions, promtool
	$(VENV)/bin/ruff check generator tests benchmarks
	$(VENV)/bin/ruff format --check generator tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/shellcheck scripts/*.sh .ci/run generator/hpcstack/templates/images/*/*.sh generator/hpcstack/templates/images/slurm/demo/*.sh
	PY=$(CURDIR)/$(PY) scripts/lint-terraform.sh
	scripts/promtool.sh check-config prometheus/prometheus.yml
	scripts/promtool.sh check rules prometheus/rules/*.yml
	scripts/promtool.sh test rules prometheus/tests/*.yml

bench: images ## every speed/size figure with its target (BENCH_ARGS=--smoke, --only cluster,...)
	$(PY) benchmarks/run.py $(BENCH_ARGS)

clean: ## remove the virtualenv and caches (not secrets/, not Docker volumes)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
