#!/usr/bin/env bash
# 2026-11-30. The MNTP study (README.md here), both stages in the background, seed by seed (seed 0's comparison is
# complete before seed 1 starts): stage 1 (adapt.yaml) adapts SmolLM2-135M with MNTP on each setting's training
# text and writes the adapters; stage 2 (suite.yaml) trains LS-LLaMA, LS-unLLaMA and LS-unLLaMA from those
# adapters. Two runs at a time with one torch thread each,
# nice 10 (NICE=0 for an idle machine); resumable: run it again after an interruption. Extra arguments go to both
# runner calls (e.g. --wandb off). Log: experiments/runs/mntp.log; tables: experiments/runs/{mntp_adapt,mntp}/results.md,
# then `python -m experiments.mntp.compare` for the paired differences of the three arms.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p experiments/runs
# stage 2 starts even if a stage-1 run failed: only the MNTP arm of that setting and seed then fails (no adapter)
stages='for seed in 0 1 2; do
          .venv/bin/python -m experiments.suite experiments/mntp/adapt.yaml --seeds $seed --jobs 2 --threads 1 "$@"
          .venv/bin/python -m experiments.suite experiments/mntp/suite.yaml --seeds $seed --jobs 2 --threads 1 "$@"
        done'
nohup nice -n "${NICE:-10}" bash -c "$stages" stages "$@" >> experiments/runs/mntp.log 2>&1 &
echo "started (pid $!): tail -f experiments/runs/mntp.log"
