#!/usr/bin/env bash
# Paper Table 5 on one GPU (2026-11-25): runs (or resumes) every run of suite.yaml, one after the other, then writes
# experiments/runs/paper_table5/results.{md,csv} (our test score beside the paper's). Extra arguments go to the
# runner, e.g. --only <run id> or --wandb online.
set -euo pipefail
cd "$(dirname "$0")/../.."
python -m experiments.suite experiments/paper_table5/suite.yaml "$@"
