#!/usr/bin/env bash
# 2026-11-29. The decisive CPU rows with 3 seeds, see suite.yaml: two runs at a time with one torch thread each,
# nice 10 (resumable: run it again after an interruption); log: experiments/runs/repro_seeds.log.
set -euo pipefail
NICE="${NICE:-10}" exec bash "$(dirname "$0")/../run_in_background.sh" repro_seeds --jobs 2 --threads 1 "$@"
