#!/usr/bin/env bash
# 2026-12-07. Issue 17's CPU queues, each in priority order and each in the background:
#   bash experiments/unllama_diagnosis/launch.sh [first|second|third]        (default: first)
# Every suite resumes: run a queue again after an interruption and its finished runs are skipped. One torch thread per
# run, nice 10; a failed run is logged and the queue goes on. Logs: experiments/runs/unllama_diagnosis{,_2,_3}.log.
#   first:  the diagnosis of LS-unLLaMA (suite.yaml here), then the paper's rows still missing at small scale
#           (OntoNotes v5 in experiments/repro_seeds, instruction tuning on SST-5 / Twitter-Fin in
#           experiments/baselines_llm, the missing Twitter-Fin seeds in experiments/mntp). Two runs at a time.
#   second: H2's logit-max arm, which needed code newer than first's commit (LogitMaxPooling). One run at a time,
#           beside first's two (three single-thread runs on 2 cores: the same throughput, each run slower).
#   third:  (second session, at 89fa2b7) CoNLL-2003 seed 2 of the recommended depth (k = 8), the two best depths
#           (k = 8, 15) on Twitter-Fin with their paired LS-LLaMA / LS-unLLaMA seeds 1-2 (experiments/mntp). Two
#           runs at a time. As run: the Twitter-Fin baselines one at a time beside the CoNLL-2003 run (a phase waits
#           for its slowest run); H4 (4,000 sentences, ~40 CPU-minutes a run) not run.
set -euo pipefail
self="$(realpath "$0")"
cd "$(dirname "$self")/../.."
mkdir -p experiments/runs
queue="${1:-first}"
case "$queue" in
  first) log=experiments/runs/unllama_diagnosis.log jobs=2 ;;
  second) log=experiments/runs/unllama_diagnosis_2.log jobs=1 ;;
  third) log=experiments/runs/unllama_diagnosis_3.log jobs=2 ;;
  *) echo "unknown queue '$queue': first, second or third" >&2; exit 2 ;;
esac
D=experiments/unllama_diagnosis/suite.yaml
phase() {
  nice -n "${NICE:-10}" .venv/bin/python -m experiments.suite "$@" --jobs "$jobs" --threads 1 >> "$log" 2>&1 || true
}
first() {
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
second() {
  phase $D --only {sst2,sst5}-smollm2-ls_unllama_logit_max                            # H2, the authors' pooling
}
third() {
  phase $D --only conll2003-smollm2-ls_unllama_from8-s2 twitter_fin-smollm2-ls_unllama_from{8,15}
  phase experiments/mntp/suite.yaml --only twitter_fin-smollm2-ls_{llama,unllama} --seeds 1 2
}
if [ "${2:-}" = "--foreground" ]; then "$queue"; else
  nohup setsid bash "$self" "$queue" --foreground > /dev/null 2>&1 &
  echo "started (pid $!): tail -f $log"
fi
