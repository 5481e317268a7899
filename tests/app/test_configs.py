"""Every shipped YAML under configs/ and experiments/ (walked recursively) parses, and each model family builds.

- CLI configs parse with the CLI's own parser, stacked on the trainer config and a data config where they lack
  one, and every value they set is found in the parsed config (a misspelt key or a wrong type fails).
- Suite files load (their config files exist, ids are unique) and their paper keys exist in paper_numbers.yaml.
- One `fast_dev_run` per (backbone, method) pair builds the model with a tiny random backbone substituted (a 2-layer
  LLaMA for decoders, a 2-layer BERT/RoBERTa for encoders) and checks the mask, pooling and finetuning it asked for;
  one per data config (real data from ../shared, 16 examples) checks that the data module and the model meet.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import ROOT
from lightning.pytorch import LightningModule
from tiny_families import FAMILIES, family_of, tiny_config
from typing_extensions import override

from datamodules import LabelDataModule
from experiments.results_table import load_paper_numbers
from experiments.suite import load_suite
from main import LabelSupervisedCLI, main

CLI_KEYS = {"model", "data", "trainer", "seed_everything", "ckpt_path"}
TRAINER = "configs/trainer/default.yaml"
SYNTHETIC_DATA = "experiments/repro_smollm2/right_context_ner.yaml"


def shipped_yaml() -> list[Path]:
    """Every YAML file under configs/ and experiments/, except run outputs (experiments/runs, gitignored, and the
    runs' recorded configs in experiments/results)."""
    files = [p for folder in ("configs", "experiments") for p in (ROOT / folder).rglob("*.y*ml")]
    return sorted(p for p in files if not {"runs", "results"} & set(p.relative_to(ROOT).parts[:2]))


def kind(raw: Any) -> str:
    """`suite`, `paper_numbers`, `sweep` or `cli` (a LightningCLI config); anything else is an error in the test."""
    if isinstance(raw, dict) and "name" in raw and ("runs" in raw or "matrix" in raw):
        return "suite"
    if isinstance(raw, dict) and {"program", "method", "parameters", "command"} <= set(raw):
        return "sweep"  # a W&B sweep (experiments/sweeps/): tests/experiments/test_dashboard.py checks it
    if isinstance(raw, dict) and set(raw) == {"numbers"}:
        return "paper_numbers"
    if isinstance(raw, dict) and raw and set(raw) <= CLI_KEYS:
        return "cli"
    raise AssertionError(f"unknown kind of YAML (keys {sorted(raw) if isinstance(raw, dict) else type(raw)})")


class _Stop(Exception):
    pass


class _ParserOnly(LabelSupervisedCLI):
    @override
    def parse_arguments(self, parser, args) -> None:
        raise _Stop(parser)


@pytest.fixture(scope="module")
def parser():
    """The CLI's own argument parser (built once)."""
    try:
        _ParserOnly(LightningModule, LabelDataModule, subclass_mode_model=True, subclass_mode_data=True, args=["fit"])
    except _Stop as stop:
        return stop.args[0]
    raise AssertionError("the CLI did not reach argument parsing")


def leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of the scalar values of nested mappings (lists of mappings, e.g. loggers, are skipped)."""
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() for k, v in leaves(value, f"{prefix}{key}.").items()}
    if isinstance(tree, list) and any(isinstance(item, dict) for item in tree):
        return {}
    return {prefix.rstrip("."): tree}


def lookup(config: Any, key: str) -> Any:
    """The value at a dotted key of a parsed config (namespaces, and plain dicts such as backbone_config); the
    model's arguments live under `model.init_args` (the model is a subclass type with a default class)."""
    parts = key.split(".")
    if parts[0] == "model" and parts[1:2] not in (["class_path"], ["init_args"]):
        parts.insert(1, "init_args")
    for part in parts:
        config = config[part] if isinstance(config, dict) else getattr(config, part, None)
    return config


def stack_for(path: Path, raw: dict[str, Any]) -> list[str]:
    """The configs to parse `path` with: the trainer config, a data config when it has none, a backbone before a
    method overlay, then the file."""
    stack = [TRAINER]
    if not isinstance(raw.get("data"), dict) or "class_path" not in raw["data"]:
        stack.append(SYNTHETIC_DATA)
    if path.parent.name == "method":
        stack.append("configs/backbone/tiny-llama.yaml")
    return [*stack, str(path.relative_to(ROOT))]


@pytest.mark.parametrize("path", shipped_yaml(), ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_yaml_parses(path: Path, parser, monkeypatch):
    monkeypatch.chdir(ROOT)
    raw = yaml.safe_load(path.read_text())
    what = kind(raw)
    if what == "paper_numbers":
        assert load_paper_numbers(path)
        return
    if what == "sweep":
        return
    if what == "suite":
        suite = load_suite(path)
        numbers = load_paper_numbers()
        for run in suite.runs:
            assert run.paper is None or run.paper in numbers, f"{run.id}: paper key {run.paper!r} not in the numbers"
        return
    args = [arg for config in stack_for(path, raw) for arg in ("--config", config)]
    config = parser.parse_args(["fit", *args]).fit
    for key, value in leaves(raw).items():
        if key.startswith("trainer.logger") or key.startswith("trainer.callbacks"):
            continue
        parsed = lookup(config, key)
        assert parsed == value or str(parsed) == str(value), f"{path}: {key} = {value!r} parsed as {parsed!r}"


def test_the_walk_finds_every_family():
    names = {str(p.relative_to(ROOT)) for p in shipped_yaml()}
    for expected in (
        "configs/backbone/llama2-7b.yaml",
        "configs/backbone/roberta-large.yaml",
        "configs/method/ls_unllama.yaml",
        "configs/method/finetune.yaml",
        "configs/trainer/early_stopping.yaml",
        "configs/ablation/pooling_mean.yaml",
        "experiments/repro_smollm2/suite.yaml",
        "experiments/paper_numbers.yaml",
    ):
        assert expected in names


# ------------------------------------------------------------------------------------- builds (fast_dev_run)
TINY_ENCODER = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
FAST = ["--trainer.fast_dev_run=1", "--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.logger=false"]
FAST += ["--trainer.callbacks=[]"]  # no logger: LearningRateMonitor would refuse to start
# one per tiny family (LLaMA causal + bidirectional, BERT, RoBERTa) by default; the rest are marked slow
DEFAULT_BUILDS = [
    ("configs/backbone/llama2-7b.yaml", "configs/method/ls_llama.yaml"),
    ("configs/backbone/llama2-7b.yaml", "configs/method/ls_unllama.yaml"),
    ("configs/backbone/bert-base.yaml", "configs/method/finetune.yaml"),
    ("configs/backbone/roberta-base.yaml", "configs/method/finetune.yaml"),
    ("configs/backbone/gemma2-9b.yaml", "configs/method/ls_unllama.yaml"),  # windows, soft-capping, eager
    ("configs/backbone/modernbert-base.yaml", "configs/method/finetune.yaml"),
]
DECODER_METHODS = ["configs/method/ls_llama.yaml", "configs/method/ls_unllama.yaml"]


def is_encoder_backbone(path: Path) -> bool:
    """An encoder's backbone config names one of the full-finetuning recipes of the BERT family."""
    return recipe_of(str(path.relative_to(ROOT))).endswith(("bert.yaml", "encoder.yaml"))


def pairs() -> list[tuple[str, str]]:
    """Every shipped (backbone, method) pair: decoders with the LS methods, encoders with `finetune`."""
    found = []
    for path in sorted((ROOT / "configs" / "backbone").glob("*.yaml")):
        if path.stem == "tiny-llama":
            continue  # the quickstart's toy, with its own recipe; built by the quickstart tests
        methods = ["configs/method/finetune.yaml"] if is_encoder_backbone(path) else DECODER_METHODS
        found += [(str(path.relative_to(ROOT)), method) for method in methods]
    return found


def tiny_backbone(backbone: dict[str, Any]) -> list[str]:
    """CLI arguments replacing the configured pretrained backbone with a tiny random one of the same family (the
    families of tests/model/test_architectures.py; else LLaMA, BERT or RoBERTa)."""
    source = str(backbone["model"].get("backbone")).lower()
    family = family_of(source)
    if family is not None:
        config = json.dumps(tiny_config(family))
        if FAMILIES[family].get("encoder"):
            return ["--model.backbone=null", f"--model.backbone_config={config}"]
        attn = backbone["model"].get("attn_implementation", "sdpa")  # after the overlay, which sets sdpa
        overlay = ["--config", "configs/debug/tiny_llama.yaml", "--data.init_args.tokenizer=null"]
        return [*overlay, f"--model.backbone_config={config}", f"--model.attn_implementation={attn}"]
    if "roberta" in source:
        config = {"model_type": "roberta", **TINY_ENCODER, "max_position_embeddings": 130}
    elif "bert" in source or "minilm" in source:
        config = {"model_type": "bert", **TINY_ENCODER}
    else:
        return ["--config", "configs/debug/tiny_llama.yaml", "--data.init_args.tokenizer=null"]
    return ["--model.backbone=null", f"--model.backbone_config={json.dumps(config)}"]


def recipe_of(backbone: str) -> str:
    """The recipe a backbone config names in its header (`the training recipe is configs/recipe/<name>.yaml`)."""
    match = re.search(r"configs/recipe/\w+\.yaml", (ROOT / backbone).read_text())
    assert match, f"{backbone} names no recipe in its header"
    return match.group(0)


def build(backbone: str, method: str, data: str = SYNTHETIC_DATA, extra: list[str] | None = None):
    """fast_dev_run of recipe + data + backbone + method with a tiny backbone: the CLI, the raw recipe and backbone
    configs (merged: the backbone's keys over the recipe's) and the raw method config."""
    recipe = recipe_of(backbone)
    raw = yaml.safe_load((ROOT / recipe).read_text())
    raw["model"] = {**raw["model"], **yaml.safe_load((ROOT / backbone).read_text())["model"]}
    args = ["fit", "--config", recipe, "--config", data, "--config", backbone, "--config", method]
    return main([*args, *tiny_backbone(raw), *FAST, *(extra or [])]), raw, yaml.safe_load((ROOT / method).read_text())


@pytest.mark.parametrize(
    ("backbone", "method"),
    [pytest.param(*pair, marks=[] if pair in DEFAULT_BUILDS else [pytest.mark.slow]) for pair in pairs()],
)
def test_backbone_and_method_build_with_a_tiny_backbone(backbone: str, method: str, monkeypatch):
    monkeypatch.chdir(ROOT)
    cli, raw, method_raw = build(backbone, method)
    model = cli.model
    assert cli.trainer.global_step == 1
    spec, components = raw["model"], method_raw["model"]["init_args"]
    assert model.hparams.finetuning == spec["finetuning"]
    assert type(model.mask).__name__ == components["mask"]["class_path"].rsplit(".", 1)[-1]
    assert type(model.pooling).__name__ == components["pooling"]["class_path"].rsplit(".", 1)[-1]
    if spec["finetuning"] == "lora":
        assert model.hparams.lora_r == spec["lora_r"] == 12 and model.hparams.lora_alpha == 32
    lr = spec["optimizer"]["init_args"]["lr"]
    assert cli.trainer.optimizers[0].param_groups[0]["initial_lr"] == pytest.approx(lr)
    assert cli.datamodule.batch_size == raw["data"]["init_args"]["batch_size"] == 8


DATA_CONFIGS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "configs" / "data").glob("*.yaml"))
DEFAULT_DATA = {"configs/data/conll2003.yaml", "configs/data/sst2.yaml"}  # the reproduction's; the rest are slow


@pytest.mark.parametrize(
    "data", [pytest.param(d, marks=[] if d in DEFAULT_DATA else [pytest.mark.slow]) for d in DATA_CONFIGS]
)
def test_data_config_builds_on_real_data(data: str, llama2_tokenizer, monkeypatch):
    monkeypatch.chdir(ROOT)
    raw = yaml.safe_load((ROOT / data).read_text())
    data_dir = raw["data"]["init_args"].get("data_dir")
    if data_dir is None:
        pytest.skip(f"{data} reads the hub (no network here); its parse is checked by test_shipped_yaml_parses")
    if not (ROOT / data_dir).is_dir():
        pytest.skip(f"{ROOT / data_dir} is absent (the shared data folder)")
    subset = ["--data.init_args.max_train_examples=16", "--data.init_args.max_eval_examples=16"]
    stage = "test" if "test" in Path(data).stem else "fit"
    args = [stage, "--config", TRAINER, "--config", data, "--config", "configs/backbone/llama2-7b.yaml"]
    args += ["--config", "configs/method/ls_unllama.yaml"]
    args += ["--config", "configs/debug/tiny_llama.yaml", f"--data.init_args.tokenizer={llama2_tokenizer}"]
    cli = main([*args, *FAST, *subset, "--model.verify_mask=false"])
    assert cli.model.hparams.num_labels == cli.datamodule.num_labels > 1
    assert cli.model.task == cli.datamodule.task


BACKBONE_KEYS = {"backbone", "backbone_config", "lora_target_modules", "attn_implementation", "gradient_checkpointing"}


@pytest.mark.parametrize("backbone", sorted((ROOT / "configs" / "backbone").glob("*.yaml")), ids=lambda p: p.stem)
def test_backbone_configs_say_only_the_backbone(backbone: Path):
    """What to load and how its attention runs; the recipe (optimizer, lr, warm-up, batch, precision) is elsewhere.
    The quickstart's tiny random backbone keeps its own toy recipe."""
    raw = yaml.safe_load(backbone.read_text())
    if backbone.stem == "tiny-llama":
        return
    assert set(raw) == {"model"} and set(raw["model"]) <= BACKBONE_KEYS, sorted(raw["model"])
    assert (ROOT / recipe_of(str(backbone.relative_to(ROOT)))).is_file()


@pytest.mark.parametrize("recipe", sorted((ROOT / "configs" / "recipe").glob("*.yaml")), ids=lambda p: p.stem)
def test_recipes_carry_the_shared_trainer_block_unchanged(recipe: Path):
    """A recipe is the first of a run's four configs, so it carries configs/trainer/default.yaml's loggers,
    checkpoints and logging cadence; they must not drift apart."""
    shared, raw = yaml.safe_load((ROOT / TRAINER).read_text())["trainer"], yaml.safe_load(recipe.read_text())
    for key in ("logger", "callbacks", "log_every_n_steps", "gradient_clip_val"):
        assert raw["trainer"][key] == shared[key], key
    assert "optimizer" in raw["model"] and "batch_size" in raw["data"]["init_args"]


def test_a_paper_run_needs_at_most_four_configs():
    """Recipe, data, backbone, method (Table 5's pooling ablation adds its overlay as a fifth)."""
    from experiments.suite import load_suite

    for table in ("paper_table2", "paper_table3", "paper_table4"):
        suite = load_suite(ROOT / "experiments" / table / "suite.yaml")
        assert max(len(suite.base_configs) + len(run.configs) for run in suite.runs) <= 4, table
