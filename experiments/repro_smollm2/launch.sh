#!/usr/bin/env bash
# Small-scale reproduction on a 2-core CPU (2026-11-25): SmolLM2-135M as LS-LLaMA / LS-unLLaMA vs all-MiniLM-L6-v2,
# see suite.yaml. Runs in the background at low priority, resumable (run it again after an interruption); the log
# is experiments/runs/repro_smollm2.log, the runs and results table go to experiments/runs/repro_smollm2/.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p experiments/runs
nohup nice -n 10 .venv/bin/python -m experiments.suite experiments/repro_smollm2/suite.yaml --threads auto "$@" \
  >> experiments/runs/repro_smollm2.log 2>&1 &
echo "started (pid $!): tail -f experiments/runs/repro_smollm2.log"
