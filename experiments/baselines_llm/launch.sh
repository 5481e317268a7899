#!/usr/bin/env bash
# 2026-11-30. The LLM baselines on a CPU, see suite.yaml: zero-shot SmolLM2-135M-Instruct on five test sets and
# instruction tuning with 3 seeds on three; two runs at a time with one torch thread each, nice 10 (resumable: run
# it again after an interruption); log: experiments/runs/baselines_llm.log. The runs go into
# experiments/runs/baselines_llm (copied with repro_seeds' and mntp's into one results folder for the tables).
set -euo pipefail
NICE="${NICE:-10}" exec bash "$(dirname "$0")/../run_in_background.sh" baselines_llm --jobs 2 --threads 1 "$@"
