#!/usr/bin/env bash
# Paper Table 3 on one GPU (2026-11-25): runs (or resumes) every run of suite.yaml, one per language and model, then
# writes experiments/runs/paper_table3/results.{md,csv}. AMAZON_DIR = the folder of the original JSON-lines files
# (the hub copy was withdrawn). Extra arguments go to the runner, e.g. --only <run id> or --wandb online.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${AMAZON_DIR:?set AMAZON_DIR to the folder with dataset_<lang>_<split>.json}"
python -m experiments.suite experiments/paper_table3/suite.yaml "$@" -- "--data.init_args.data_dir=$AMAZON_DIR"
