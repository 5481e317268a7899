#!/usr/bin/env bash
# The synthetic right-context task, larger budget (2026-11-25): SmolLM2-135M LS-LLaMA vs LS-unLLaMA vs all-MiniLM-L6-v2, see suite.yaml.
# Resumable (run it again after an interruption); log: experiments/runs/repro_smollm2_synthetic.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p experiments/runs
nohup .venv/bin/python -m experiments.suite experiments/repro_smollm2_synthetic/suite.yaml --threads auto "$@" \
  >> experiments/runs/repro_smollm2_synthetic.log 2>&1 &
echo "started (pid $!): tail -f experiments/runs/repro_smollm2_synthetic.log"
