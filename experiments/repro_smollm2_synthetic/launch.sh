#!/usr/bin/env bash
# The synthetic right-context task, larger budget (2026-11-25): SmolLM2-135M LS-LLaMA vs LS-unLLaMA vs all-MiniLM-L6-v2, see suite.yaml.
# Resumable (run it again after an interruption); log: experiments/runs/repro_smollm2_synthetic.log.
set -euo pipefail
exec bash "$(dirname "$0")/../run_in_background.sh" repro_smollm2_synthetic "$@"
