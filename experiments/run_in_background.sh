#!/usr/bin/env bash
# Runs (or resumes) experiments/<suite>/suite.yaml in the background: `nohup`, niceness $NICE (default 0), one torch
# thread while the machine is busy (--threads auto); output appended to experiments/runs/<suite>.log. The CPU
# suites' launch.sh call it; extra arguments go to the runner, e.g. --only <run id>.
#   bash experiments/run_in_background.sh repro_smollm2_conll [--only conll2003-minilm]
set -euo pipefail
cd "$(dirname "$0")/.."
suite="$1"
shift
mkdir -p experiments/runs
nohup nice -n "${NICE:-0}" .venv/bin/python -m experiments.suite "experiments/$suite/suite.yaml" --threads auto "$@" \
  >> "experiments/runs/$suite.log" 2>&1 &
echo "started (pid $!): tail -f experiments/runs/$suite.log"
