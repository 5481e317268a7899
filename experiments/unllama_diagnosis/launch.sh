#!/usr/bin/env bash
# 2026-12-07. Issue 17's CPU queue, in priority order: the diagnosis of LS-unLLaMA (suite.yaml here; H2's logit-max
# arm is launched by launch_second_queue.sh once that pooling exists), then the paper's rows still missing at small
# scale (OntoNotes v5 in experiments/repro_seeds, instruction tuning on SST-5 / Twitter-Fin in
# experiments/baselines_llm, the missing Twitter-Fin seeds in experiments/mntp). Two runs at a time with one torch
# thread each, nice 10; every suite resumes (run this again after an interruption: finished runs are skipped).
# Log: experiments/runs/unllama_diagnosis.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p experiments/runs
log=experiments/runs/unllama_diagnosis.log
D=experiments/unllama_diagnosis/suite.yaml
phase() {  # a failed run is logged and the queue goes on
  nice -n "${NICE:-10}" .venv/bin/python -m experiments.suite "$@" --jobs 2 --threads 1 >> "$log" 2>&1 || true
}
queue() {
  phase $D --only {sst2,sst5}-smollm2-ls_unllama_lr{8e-5,2e-4}                       # H1, 250 steps
  phase $D --only {sst2,sst5}-smollm2-ls_unllama_{mean,last}                          # H2
  phase $D --only {sst2,sst5}-smollm2-ls_unllama_from{8,15,22,26}                     # H3, classification
  phase $D --only conll2003-smollm2-ls_unllama_from{8,15,22,26}                       # H3, NER
  phase experiments/repro_seeds/suite.yaml --only ontonotes5-{smollm2-ls_unllama,smollm2-ls_llama,minilm}
  phase experiments/baselines_llm/suite.yaml --only {sst5,twitter_fin}-smollm2-instruction_tuning
  # seed 0 of these ran on 2026-11-30 (experiments/results/2026-11-29_repro_seeds)
  phase experiments/baselines_llm/suite.yaml --only {sst5,twitter_fin}-minilm --seeds 1 2
  phase experiments/mntp/suite.yaml --only twitter_fin-smollm2-ls_{llama,unllama} --seeds 1 2
  phase $D --only {sst2,sst5}_4000-smollm2-ls_{llama,unllama}                         # H4
  phase $D --only {sst2,sst5}_x4-smollm2-ls_{llama,unllama,unllama_lr8e-5,unllama_lr2e-4}  # H1, 1,000 steps
}
if [ "${1:-}" = "--foreground" ]; then queue; else
  nohup setsid bash "$0" --foreground > /dev/null 2>&1 &
  echo "started (pid $!): tail -f $log"
fi
