"""Model cards (README.md) for exported folders, built with `huggingface_hub.ModelCard`: the base model, method, mask,
pooling, LoRA settings, training data and its size, the run's validation and test metrics, how to load the model,
the paper's citation and the limitations; metadata for the hub (`base_model`, `library_name`, `pipeline_tag`,
`tags`, `datasets`, `model-index`).

    python -m app.export --ckpt_path best.ckpt --output_dir exported/ [--metrics test/metrics.csv]   # writes it
    write_model_card("exported/")                        # a folder written from Python (`save_pretrained`)

What the card knows comes from the folder (`ls_llama.json`: the model's arguments and format) and, for an export of
a checkpoint, from the run (`run_facts`): the data module and its sizes (the checkpoint's callback states, else the
run's `config.yaml` beside it), the validation metrics of the checkpoint's own step and any test metrics from the
run's `metrics.csv` (`<log_dir>/checkpoints/x.ckpt` -> `<log_dir>/metrics.csv`) and from `--metrics` files (a
`main.py test` run logs to a folder of its own).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from core.class_paths import from_spec, import_class
from lightning_modules.backbone.masks import ENCODER_MODEL_TYPES, MASKS, AttentionMaskStrategy
from lightning_modules.label_supervised.pooling import POOLINGS, Pooling
from lightning_modules.label_supervised.pretrained import CONFIG_FILE, read_export_config

log = logging.getLogger(__name__)

PAPER = "https://arxiv.org/abs/2310.01208"
CITATION = """@article{li2023label,
  title   = {Label Supervised LLaMA Finetuning},
  author  = {Li, Zongxi and Li, Xianming and Liu, Yuzhang and Xie, Haoran and Li, Jing and Wang, Fu-lee and Li, Qing
             and Zhong, Xiaoqin},
  journal = {arXiv preprint arXiv:2310.01208},
  year    = {2023}
}"""
METHODS = {
    "ls_llama": "LS-LLaMA: the decoder keeps its causal mask; the last real token's final state feeds a linear "
    "classifier trained with cross-entropy on the labels (label-supervised finetuning, Li et al. 2023)",
    "ls_unllama": "LS-unLLaMA: the decoder's causal mask is removed (every token attends to every real token; padding "
    "stays masked) and the pooled final states feed a linear classifier trained on the labels (Li et al. 2023)",
    "finetune": "finetuning of a BERT-family encoder with a linear classifier on its pooled final states",
}
MASK_TEXT = {
    "causal": "causal: each token attends to itself and the tokens on its left (the decoder's own mask)",
    "bidirectional": "bidirectional: every token attends to every real token (padding masked)",
}
POOLING_TEXT = {
    "last": "the last real token's final state",
    "first": "the first token's final state ([CLS] of encoders)",
    "mean": "the mean of the real tokens' final states",
    "max": "the element-wise maximum of the real tokens' final states",
    "logit_max": "each label's maximum logit over the real tokens (every token projected first)",
    "attention": "a learned query's attention-weighted mean of the real tokens' final states",
}
FORMAT_TEXT = {
    "hf": "a stock transformers classifier folder (merged weights)",
    "remote_code": "a transformers folder with the modeling code shipped beside the weights (`modeling_ls_llama.py`, "
    "`ls_llama_portable.py`; load with `trust_remote_code=True`)",
    "adapter": "a peft LoRA adapter and the classification head (`head.safetensors`) over the base backbone",
    "head": "the classification head alone (`head.safetensors`) over the unchanged base backbone",
    "merged": "the merged backbone (`backbone/`) and the head, for `LabelSupervisedModule.from_pretrained`",
}
# metric names of lightning_modules.metrics -> (hub metric type, readable name); others stay in the table only
HUB_METRICS = {
    "sequence": {"acc": ("accuracy", "Accuracy"), "f1": ("f1", "Macro F1")},
    "token": {
        "f1": ("f1", "Entity F1 (seqeval, micro)"),
        "precision": ("precision", "Entity precision (seqeval, micro)"),
        "recall": ("recall", "Entity recall (seqeval, micro)"),
        "word_acc": ("accuracy", "Word accuracy"),
    },
}
PIPELINE_TAGS = {"sequence": "text-classification", "token": "token-classification"}


@dataclass
class RunFacts:
    """What a training run adds to an exported folder's card.

    Args:
        data_name: the data module's name (`sst2`, `conll2003`, ...).
        data_class: its class path.
        hub_dataset: the hub dataset it reads (its `hub_name`), when it has one.
        train_size: training examples.
        val_size: validation examples.
        max_length: the longest token sequence; longer texts were cut.
        val_metrics: the checkpoint's validation metrics (`acc`, `f1`, ...; without the `val/` prefix).
        test_metrics: test metrics (without the `test/` prefix).
        sources: where the facts were read, for the card (`metrics.csv` paths, the checkpoint).
        checkpoint: the checkpoint's file name and step.
    """

    data_name: str | None = None
    data_class: str | None = None
    hub_dataset: str | None = None
    train_size: int | None = None
    val_size: int | None = None
    max_length: int | None = None
    val_metrics: dict[str, float] = field(default_factory=dict)
    test_metrics: dict[str, float] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    checkpoint: str | None = None


# ----------------------------------------------------------------------------------------------- run facts
def run_facts(ckpt_path: str | Path, metrics_files: list[str | Path] = ()) -> RunFacts:
    """The facts of the run that wrote `ckpt_path` (see the module docstring); what is not found stays None/empty.

    Args:
        ckpt_path: the Lightning checkpoint.
        metrics_files: further `metrics.csv` files (e.g. of a `main.py test` run), read after the run's own.
    """
    ckpt_path = Path(ckpt_path)
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)
    step = int(checkpoint.get("global_step", 0))
    facts = RunFacts(checkpoint=f"{ckpt_path.name} (step {step})")
    callbacks = checkpoint.get("callbacks") or {}
    data = ((callbacks.get("WandbRuns") or {}).get("fit_config") or {}).get("data") or {}
    facts.data_name, facts.data_class, facts.max_length = data.get("name"), data.get("class"), data.get("max_length")
    facts.train_size, facts.val_size = data.get("train_size"), data.get("val_size")
    log_dir = ckpt_path.parent.parent if ckpt_path.parent.name == "checkpoints" else ckpt_path.parent
    _read_run_config(log_dir / "config.yaml", facts)
    if facts.data_class is None:
        facts.data_class = checkpoint.get("datamodule_hparams_name") or None
    own = log_dir / "metrics.csv"
    files = [Path(f) for f in ([own] if own.is_file() else []) + list(metrics_files)]
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"--metrics {path}: no such file (a metrics.csv of Lightning's CSVLogger)")
        val, test = read_metrics(path, step)
        if val and not facts.val_metrics:
            facts.val_metrics = val
            facts.sources.append(f"validation: {path} (the checkpoint's step)")
        if test:
            facts.test_metrics = test
            facts.sources.append(f"test: {path}")
    if not facts.val_metrics:
        facts.val_metrics = _checkpoint_score(callbacks)
        if facts.val_metrics:
            facts.sources.append(f"validation: the ModelCheckpoint state in {ckpt_path.name}")
    return facts


def _read_run_config(path: Path, facts: RunFacts) -> None:
    """Fill what the facts lack from the run's `config.yaml` (LightningCLI's copy of the whole configuration)."""
    if not path.is_file():
        return
    config = yaml.safe_load(path.read_text()) or {}
    data = config.get("data") or {}
    init_args = data.get("init_args") or {}
    facts.data_class = facts.data_class or data.get("class_path")
    facts.hub_dataset = init_args.get("hub_name") or None
    facts.max_length = facts.max_length or init_args.get("max_length")
    if facts.data_name is None and facts.data_class:  # the data module's own name (`sst2`), as runs are named
        try:
            facts.data_name = getattr(import_class(facts.data_class, "data.class_path"), "name", None)
        except ValueError as error:  # a class of a package not allowed here, or gone: the card names the class
            log.info("%s: %s", path, error)


def _checkpoint_score(callbacks: dict[str, Any]) -> dict[str, float]:
    """The monitored validation metric's best value from a `ModelCheckpoint` state, e.g. `{"score": 0.9}`."""
    for name, state in callbacks.items():
        monitor, score = state.get("monitor"), state.get("best_model_score")
        if name.startswith("ModelCheckpoint") and monitor and monitor.startswith("val/") and score is not None:
            return {monitor.removeprefix("val/"): float(score)}
    return {}


def read_metrics(path: Path, step: int | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """Validation and test metrics from a CSVLogger `metrics.csv` (without their `val/`, `test/` prefixes).

    Validation: the row logged last at or before `step` (a checkpoint is saved right after the validation that
    chose it), or the last validation row; test: the last test row.
    """
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    if rows and not any(key and (key.startswith("val/") or key.startswith("test/")) for key in rows[0]):
        raise ValueError(f"{path}: no val/ or test/ columns (expected a metrics.csv of Lightning's CSVLogger)")
    val_rows = [row for row in rows if _values(row, "val/")]
    if step is not None:
        before = [row for row in val_rows if row.get("step", "").isdigit() and int(row["step"]) <= step]
        val_rows = before or val_rows
    test_rows = [row for row in rows if _values(row, "test/")]
    return (_values(val_rows[-1], "val/") if val_rows else {}), (_values(test_rows[-1], "test/") if test_rows else {})


def _values(row: dict[str, str], prefix: str) -> dict[str, float]:
    values = {}
    for key, value in row.items():
        if key and key.startswith(prefix) and value not in ("", None):
            number = float(value)
            if math.isfinite(number):
                values[key.removeprefix(prefix)] = number
    return values


# ----------------------------------------------------------------------------------------------------- the card
def hub_id(source: str | None) -> str | None:
    """`source` when it names a hub repository (`owner/name`), else None (local folders, `.gguf`, `pkg://`)."""
    if not source or "://" in source or source.endswith(".gguf") or Path(source).exists():
        return None
    parts = source.split("/")
    return source if len(parts) == 2 and all(parts) and not source.startswith((".", "~")) else None


def _component_label(spec: Any, base: type, field: str, registry: dict) -> str:
    """The short label (`bidir@15`, `max`) of a stored mask/pooling spec."""
    return from_spec(spec, base, field, registry).label


def model_facts(folder: Path) -> dict[str, Any]:
    """What the folder says about the model: its `ls_llama.json` (format, the model's arguments) and derived names."""
    export = read_export_config(folder)
    model = export["model"]
    origin = export.get("origin") or {}  # older exports: what "model" says
    facts = {**model, "format": export["format"], "backbone": origin.get("backbone", model.get("backbone"))}
    facts["backbone_config"] = origin.get("backbone_config", model.get("backbone_config"))
    facts["finetuning"] = origin.get("finetuning", model.get("finetuning"))
    facts["mask_label"] = _component_label(model.get("mask"), AttentionMaskStrategy, "model.mask", MASKS)
    facts["pooling_label"] = _component_label(model.get("pooling"), Pooling, "model.pooling", POOLINGS)
    config_file = folder / "config.json"
    if config_file.is_file():  # merged formats: the backbone's config is in the folder
        config = json.loads(config_file.read_text())
        facts["backbone_model_type"] = (config.get("backbone") or config).get("model_type")
    else:
        facts["backbone_model_type"] = (model.get("backbone_config") or {}).get("model_type")
    return facts


def _backbone_text(facts: dict[str, Any], source: str | None) -> str:
    if source:
        return f"`{source}`"
    config = facts.get("backbone_config") or {}
    shape = ", ".join(f"{k} {config[k]}" for k in ("num_hidden_layers", "hidden_size") if k in config)
    return f"a randomly initialised `{facts.get('backbone_model_type')}` ({shape})"


def _finetuning_text(facts: dict[str, Any]) -> str:
    if facts["finetuning"] == "lora":
        targets = ", ".join(facts.get("lora_target_modules") or []) or "peft's default for the architecture"
        lora = f"LoRA r={facts['lora_r']}, alpha={facts['lora_alpha']}, dropout={facts['lora_dropout']} on {targets}"
        return lora + ("; merged into the weights" if facts["format"] in ("hf", "remote_code", "merged") else "")
    return {"full": "every backbone weight", "head": "the head only (frozen backbone)"}.get(
        facts["finetuning"], str(facts["finetuning"])
    )


def _mask_text(label: str, encoder: bool) -> str:
    if encoder:
        return "the encoder's own bidirectional attention"
    if label.startswith("bidir@"):
        layer = label.removeprefix("bidir@")
        return f"{label}: causal in layers 0..{int(layer) - 1}, bidirectional from layer {layer} on (padding masked)"
    return MASK_TEXT.get(label, label)


def _usage(facts: dict[str, Any], where: str) -> str:
    """Three lines that load the model and label a text."""
    task = facts["task"]
    if facts["format"] in ("hf", "remote_code"):
        remote = ", trust_remote_code=True" if facts["format"] == "remote_code" else ""
        truncation = ", truncation=True" if facts.get("max_length") else ""
        call = f'["a text to label"], top_k=None{truncation}' if task == "sequence" else '"Peter lives in Berlin"'
        return (
            f"from transformers import pipeline\n"
            f'classify = pipeline("{PIPELINE_TAGS[task]}", model="{where}"{remote})\n'
            f"print(classify({call}))"
        )
    text = '"a text to label"' if task == "sequence" else '"Peter lives in Berlin"'
    if Path(where).exists():
        return (
            "from app.predict import Predictor  # the ls-llama repository\n"
            f'predictor = Predictor.from_pretrained("{where}")\n'
            f"print(predictor.predict([{text}]))"
        )
    return (
        "from huggingface_hub import snapshot_download\n"
        "from app.predict import Predictor  # the ls-llama repository\n"
        f'print(Predictor.from_pretrained(snapshot_download("{where}")).predict([{text}]))'
    )


def _limitations(facts: dict[str, Any], encoder: bool) -> list[str]:
    task = facts["task"]
    items = [
        f"It predicts only the {len(facts['label_names'])} labels it was trained on "
        f"({', '.join(facts['label_names'])}); it is not a text generator.",
        "It inherits the biases and the languages of its base model and of its training data; check it on your "
        "own data before relying on it.",
    ]
    if facts["format"] == "remote_code":
        items.append(
            "Loading runs the shipped `modeling_ls_llama.py` and `ls_llama_portable.py` (`trust_remote_code=True`): "
            "read them first. They need transformers >= 5.2 (`config.is_causal`)."
        )
    if facts["format"] == "hf" and not encoder and facts["mask_label"] == "bidirectional":
        items.append("Bidirectional attention comes from `is_causal: false` in config.json: transformers >= 5.2.")
    if facts["format"] == "hf" and task == "sequence":
        items.append(
            "transformers' classifier pools the last token that differs from `pad_token_id`: do not end a text with "
            "the pad token (the tokenizer pads with it)."
        )
    if facts.get("max_length"):
        items.append(
            f"It was trained on texts cut to {facts['max_length']} tokens; `truncation=True` cuts longer inputs the "
            "same way (the tokenizer's `model_max_length`)."
        )
    if task == "token":
        items.append(
            "Each word was tagged at its first sub-token in training; read the tags of first sub-tokens (the "
            'pipeline\'s `aggregation_strategy="first"` where the tokenizer marks sub-words).'
        )
    return items


def build_model_card(folder: str | Path, run: RunFacts | None = None, repo_id: str | None = None) -> ModelCard:
    """The card of an exported folder (see the module docstring).

    Args:
        folder: the exported folder (`ls_llama.json` and its format's files).
        run: what the training run adds (data, metrics); None = the folder's facts only.
        repo_id: the hub repository it goes to (named in the card and its usage lines); None = the folder.
    """
    folder = Path(folder)
    facts = model_facts(folder)
    run = run or RunFacts()
    facts["max_length"] = run.max_length
    source = facts.get("backbone")
    encoder = facts.get("backbone_model_type") in ENCODER_MODEL_TYPES
    task, method = facts["task"], facts.get("method", "label_supervised")
    name = repo_id.split("/")[-1] if repo_id else folder.resolve().name
    base_model = hub_id(source)
    data_label = run.data_name or (run.data_class or "").rsplit(".", 1)[-1] or None
    library = {"adapter": "peft", "head": "ls-llama", "merged": "ls-llama"}.get(facts["format"], "transformers")
    tags = ["ls-llama", "label-supervised", method.replace("_", "-"), f"mask-{facts['mask_label']}"]
    tags += [f"pooling-{facts['pooling_label']}"] if task == "sequence" else []
    tags += ["lora"] if facts["finetuning"] == "lora" else []
    tags += ["custom_code"] if facts["format"] == "remote_code" else []
    eval_results = _eval_results(task, run, data_label)
    card_data = ModelCardData(
        base_model=base_model,
        base_model_relation=("adapter" if facts["format"] == "adapter" else "finetune") if base_model else None,
        datasets=[run.hub_dataset] if run.hub_dataset else None,
        library_name=library,
        pipeline_tag=PIPELINE_TAGS[task],
        tags=tags,
        **({"model_name": name, "eval_results": eval_results} if eval_results else {}),
    )
    content = "\n".join(
        [
            "---",
            card_data.to_yaml(),
            "---",
            "",
            f"# {name}",
            "",
            f"A {task} classifier ({len(facts['label_names'])} labels) trained with {METHODS.get(method, method)}. "
            f"Paper: [Label Supervised LLaMA Finetuning]({PAPER}).",
            "",
            "## Model",
            "",
            "| | |",
            "|---|---|",
            f"| base model | {_backbone_text(facts, source)} |",
            f"| method | `{method}` |",
            f"| attention mask | {_mask_text(facts['mask_label'], encoder)} |",
            f"| pooling | {_pooling_row(facts, task)} |",
            f"| labels | {', '.join(f'`{label}`' for label in facts['label_names'])} |",
            f"| finetuning | {_finetuning_text(facts)} |",
            f"| head | pooling -> dropout {facts.get('head_dropout') or 0.0} -> linear `score` |",
            f"| weights | {facts.get('dtype', 'float32')} |",
            f"| this folder | `{facts['format']}`: {FORMAT_TEXT[facts['format']]} |",
            "",
            "## Training data",
            "",
            *_data_lines(run, data_label),
            "",
            "## Results",
            "",
            *_result_lines(run),
            "",
            "## How to use",
            "",
            "```python",
            _usage(facts, repo_id or str(folder)),
            "```",
            "",
            "## Limitations",
            "",
            *[f"- {item}" for item in _limitations(facts, encoder)],
            "",
            "## Citation",
            "",
            "```bibtex",
            CITATION,
            "```",
            "",
        ]
    )
    return ModelCard(content)


def _pooling_row(facts: dict[str, Any], task: str) -> str:
    if task == "token":
        return "none: every token is projected (token classification)"
    label = facts["pooling_label"]
    return f"`{label}`: {POOLING_TEXT.get(label, 'a pooling of its own')}"


def _data_lines(run: RunFacts, data_label: str | None) -> list[str]:
    if data_label is None:
        return ["Not recorded with this export (it was written from Python, not from a run's checkpoint)."]
    sizes = ", ".join(
        f"{count:,} {split}" for split, count in (("training", run.train_size), ("validation", run.val_size)) if count
    )
    hub = f" (hub: [{run.hub_dataset}](https://hf.co/datasets/{run.hub_dataset}))" if run.hub_dataset else ""
    lines = [f"- dataset: `{data_label}`{hub}"]
    lines += [f"- data module: `{run.data_class}`"] if run.data_class else []
    lines += [f"- examples: {sizes}"] if sizes else []
    lines += [f"- longest input: {run.max_length} tokens (longer texts cut)"] if run.max_length else []
    return lines


def _result_lines(run: RunFacts) -> list[str]:
    splits = (("validation", run.val_metrics), ("test", run.test_metrics))
    rows = [(split, metric, value) for split, metrics in splits for metric, value in metrics.items()]
    if not rows:
        return ["No metrics were found for this export (pass `--metrics metrics.csv` to `python -m app.export`)."]
    lines = ["| split | metric | value |", "|---|---|---|"]
    lines += [f"| {split} | {metric} | {value:.4f} |" for split, metric, value in rows]
    if run.checkpoint:
        lines += ["", f"Checkpoint `{run.checkpoint}`; metrics read from:", "", *[f"- {s}" for s in run.sources]]
    return lines


def _eval_results(task: str, run: RunFacts, data_label: str | None) -> list[EvalResult]:
    """The hub's `model-index` entries: the main metrics of each split."""
    if data_label is None:
        return []
    results = []
    for split, metrics in (("validation", run.val_metrics), ("test", run.test_metrics)):
        for metric, value in metrics.items():
            if metric not in HUB_METRICS[task]:
                continue
            metric_type, metric_name = HUB_METRICS[task][metric]
            results.append(
                EvalResult(
                    task_type=PIPELINE_TAGS[task],
                    dataset_type=run.hub_dataset or data_label,
                    dataset_name=data_label,
                    dataset_split=split,
                    metric_type=metric_type,
                    metric_name=metric_name,
                    metric_value=round(value, 6),
                )
            )
    return results


def write_model_card(folder: str | Path, run: RunFacts | None = None, repo_id: str | None = None) -> Path:
    """Write `build_model_card(...)` to `folder/README.md`; returns the file."""
    path = Path(folder) / "README.md"
    if not (Path(folder) / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{Path(folder) / CONFIG_FILE} not found: write_model_card needs an exported folder")
    build_model_card(folder, run, repo_id).save(path)
    return path
