#!/usr/bin/env bash
# 2026-12-07 (second session). Issue 17's runs that the first two queues left: CoNLL-2003 seed 2 of the recommended
# depth (k = 8), the two best depths (k = 8, 15) on Twitter-Fin with their paired LS-LLaMA / LS-unLLaMA seeds 1-2
# (experiments/mntp). Two runs at a time with one torch thread each, nice 10; resumable like launch.sh. Log:
# experiments/runs/unllama_diagnosis_3.log. As run on 2026-12-07: the Twitter-Fin baselines one at a time beside
# the CoNLL-2003 run (a phase waits for its slowest run); H4 (4,000 sentences, ~40 CPU-minutes a run) not run.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p experiments/runs
log=experiments/runs/unllama_diagnosis_3.log
D=experiments/unllama_diagnosis/suite.yaml
phase() {
  nice -n "${NICE:-10}" .venv/bin/python -m experiments.suite "$@" --jobs 2 --threads 1 >> "$log" 2>&1 || true
}
queue() {
  phase $D --only conll2003-smollm2-ls_unllama_from8-s2 twitter_fin-smollm2-ls_unllama_from{8,15}
  phase experiments/mntp/suite.yaml --only twitter_fin-smollm2-ls_{llama,unllama} --seeds 1 2
}
if [ "${1:-}" = "--foreground" ]; then queue; else
  nohup setsid bash "$0" --foreground > /dev/null 2>&1 &
  echo "started (pid $!): tail -f $log"
fi
