#!/usr/bin/env bash
# Small-scale reproduction on a 2-core CPU (2026-11-25): SmolLM2-135M as LS-LLaMA / LS-unLLaMA vs all-MiniLM-L6-v2,
# see suite.yaml. Runs in the background at low priority, resumable (run it again after an interruption); the log
# is experiments/runs/repro_smollm2.log, the runs and results table go to experiments/runs/repro_smollm2/.
set -euo pipefail
NICE=10 exec bash "$(dirname "$0")/../run_in_background.sh" repro_smollm2 "$@"
