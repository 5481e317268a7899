#!/usr/bin/env bash
# 2026-11-30. The paper's LLM rows on one GPU: Table 2 (zero-shot LLaMA-2-7B/13B-chat, instruction-tuned LLaMA-2-7B),
# Table 4 (zero-shot LLaMA-2-7B-chat NER) and, when AMAZON_DIR is set, Table 3 (zero-shot on Amazon reviews).
# Resumable; extra arguments go to the runner (e.g. --only <run id>, --wandb online).
set -euo pipefail
cd "$(dirname "$0")/../.."
python -m experiments.suite experiments/baselines_llm/paper_table2.yaml "$@"
python -m experiments.suite experiments/baselines_llm/paper_table4.yaml "$@"
if [ -n "${AMAZON_DIR:-}" ]; then
  python -m experiments.suite experiments/baselines_llm/paper_table3.yaml "$@" -- "--data.init_args.data_dir=$AMAZON_DIR"
fi
