#!/usr/bin/env bash
# 2026-12-07. Issue 17's second CPU queue, for the runs that need code newer than the first queue's commit: H2's
# logit-max pooling (LogitMaxPooling, added after launch.sh started). One run at a time with one torch thread, nice
# 10, beside launch.sh's two (three single-thread runs on 2 cores: the same total throughput, each run slower).
# Resumable like launch.sh. Log: experiments/runs/unllama_diagnosis_2.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p experiments/runs
log=experiments/runs/unllama_diagnosis_2.log
D=experiments/unllama_diagnosis/suite.yaml
phase() {
  nice -n "${NICE:-10}" .venv/bin/python -m experiments.suite "$@" --jobs 1 --threads 1 >> "$log" 2>&1 || true
}
queue() {
  phase $D --only {sst2,sst5}-smollm2-ls_unllama_logit_max                            # H2, the authors' pooling
}
if [ "${1:-}" = "--foreground" ]; then queue; else
  nohup setsid bash "$0" --foreground > /dev/null 2>&1 &
  echo "started (pid $!): tail -f $log"
fi
