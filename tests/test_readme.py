"""Every command of the README runs as written.

Each ```bash block of README.md runs as one bash script in a scratch folder that sees the repository's configs,
experiments and main.py (so `logs/` and outputs stay out of the repository), with one substitution, which keeps the
commands as written and makes them fast: `python main.py <subcommand> ...` gets `configs/debug/tiny_llama.yaml`
(a 2-layer random LLaMA) and `configs/debug/smoke.yaml` (2 steps, one evaluation batch, few examples) appended, and
`python -m experiments.suite <suite>` gets `--dry-run`. `--help` / `--print_config` commands run untouched. Lines
that need network, a GPU, hours or a checkout (`git clone`, `pip`, `make`, `wandb sync`, `bash experiments/...`,
`python -m experiments.dashboard` without `--dry-run`) are left out and named in the test's report.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, SHARED_DATA

README = ROOT / "README.md"
NOT_RUN = (
    r"^(git|pip|make|cd|wandb|huggingface-cli|jupyter|export|source|bash experiments/)\b",
    r"^python -m experiments\.dashboard(?!.*--dry-run)",
    r"^torchrun\b|^srun\b|^sbatch\b",
    r"--trainer\.accelerator[= ]gpu|--trainer\.devices[= ][2-9]",
)
WRAPPER = r"""
set -euo pipefail
python() {
  if [ "${1:-}" = main.py ]; then
    case " $* " in
      *" --help"*|*".help "*|*" --print_config"*) command "$PY" "$@" ;;
      *) command "$PY" "$@" --config configs/debug/tiny_llama.yaml --config configs/debug/smoke.yaml ;;
    esac
  elif [ "${1:-}" = -m ] && [ "${2:-}" = experiments.suite ]; then
    command "$PY" -m experiments.suite "$3" --dry-run "${@:4}"
  else
    command "$PY" "$@"
  fi
}
"""


def bash_blocks(text: str) -> list[str]:
    """The ```bash blocks of a Markdown text."""
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def commands(block: str) -> list[str]:
    """A block's commands: continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def runnable(command: str) -> bool:
    return not any(re.search(pattern, command) for pattern in NOT_RUN)


def scratch(tmp_path: Path) -> Path:
    """A working folder that sees the repository's files (outputs land here, not in the repository)."""
    for name in ("configs", "experiments", "notebooks", "main.py"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


BLOCKS = bash_blocks(README.read_text())


def test_the_readme_has_commands_and_the_runner_can_fail(tmp_path):
    assert sum(len(commands(b)) for b in BLOCKS) >= 10
    script = WRAPPER + "python main.py fit --config configs/does_not_exist.yaml\n"
    env = {**os.environ, "PY": sys.executable, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(["bash", "-c", script], cwd=scratch(tmp_path), env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "does_not_exist" in result.stderr


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=lambda i: f"block{i}")
def test_readme_block_runs_as_written(index, tmp_path):
    block = BLOCKS[index]
    lines = [c for c in commands(block) if runnable(c)]
    if not lines:
        pytest.skip(f"nothing runnable here: {commands(block)}")
    if "../shared" in block or "configs/data/" in block and not SHARED_DATA.is_dir():
        if not SHARED_DATA.is_dir():
            pytest.skip(f"{SHARED_DATA} is absent (the block reads the shared data)")
    env = {**os.environ, "PY": sys.executable, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    script = WRAPPER + "\n".join(lines) + "\n"
    result = subprocess.run(
        ["bash", "-c", script], cwd=scratch(tmp_path), env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"README block {index} failed:\n{script}\n--- stderr (end):\n{result.stderr[-4000:]}"
