"""Extending ls-llama is one class + one config: a pooling and a mask strategy defined HERE, in a test module, are
registered by their class definition, named in a YAML config, and train one batch through the CLI with the
attention probe checking the new strategy's promise."""

from __future__ import annotations

import pytest
import torch
import yaml
from helpers import quick

from core.class_paths import ENV_VAR, ClassPathNotAllowed
from lightning_modules import MASKS, POOLINGS, BidirectionalFromLayer, Pooling
from main import main


class FirstLastMean(Pooling):
    """The mean of the first and the last real token's states (a parameter-free pooling for the test)."""

    name = "first_last_mean"

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        first = attention_mask.int().argmax(dim=1)  # (B,)
        last = (torch.arange(hidden.shape[1], device=hidden.device) * attention_mask.bool()).argmax(dim=1)  # (B,)
        return (hidden[rows, first] + hidden[rows, last]) / 2  # (B, H)


class FromSecondLayer(BidirectionalFromLayer):
    """Causal in the first layer, bidirectional above it."""

    name = "from_second_layer"

    def __init__(self, layer: int = 1) -> None:
        super().__init__(layer)


def run_with(tmp_path, components: dict) -> object:
    config = tmp_path / "extension.yaml"
    config.write_text(yaml.safe_dump({"model": {"init_args": components}}))
    args = ["fit", *quick("early_cue", "ls_llama"), f"--config={config}", "--trainer.fast_dev_run=1"]
    return main([*args, f"--trainer.default_root_dir={tmp_path}", "--trainer.accelerator=cpu"])


def test_defining_a_class_registers_its_name():
    assert POOLINGS["first_last_mean"] is FirstLastMean and MASKS["from_second_layer"] is FromSecondLayer
    with pytest.raises(
        ValueError, match="name 'max' is taken by lightning_modules.label_supervised.pooling.MaxPooling"
    ):
        type("Clash", (Pooling,), {"name": "max"})


def test_a_new_pooling_and_mask_train_one_batch_from_yaml_by_name(tmp_path):
    cli = run_with(tmp_path, {"mask": "from_second_layer", "pooling": "first_last_mean"})
    model = cli.model
    assert isinstance(model.mask, FromSecondLayer) and isinstance(model.pooling, FirstLastMean)
    assert cli.trainer.global_step == 1
    assert model._verified_on == {"cpu"}  # the probe checked the new strategy's promise on the real model
    report = model.verify_mask()  # layer 0 causal, layer 1 bidirectional: the first token moves in layer 1 only
    changes = report["batch of 1 without padding"]
    assert changes[0] == 0 and changes[1] > 1e-4


def test_a_class_path_of_the_users_own_module_needs_the_allowlist(tmp_path, monkeypatch):
    spec = {"pooling": {"class_path": f"{__name__}.FirstLastMean"}}
    with pytest.raises(ClassPathNotAllowed, match=f"{ENV_VAR}={__name__}"):
        run_with(tmp_path, spec)
    monkeypatch.setenv(ENV_VAR, __name__)
    assert isinstance(run_with(tmp_path, spec).model.pooling, FirstLastMean)


# ------------------------------------------------- a pooling with weights and a parametrised mask (issue 18)
class GatedMeanMax(Pooling):
    """A learned per-dimension gate between the mean and the max of the real tokens' states: a pooling with weights,
    created by `build` once the head knows the hidden size."""

    name = "gated_mean_max"

    def build(self, hidden_size: int) -> None:
        self.gate = torch.nn.Parameter(torch.zeros(hidden_size))  # (H,): starts halfway between mean and max

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        real = attention_mask.bool().unsqueeze(-1)  # (B, T, 1)
        mean = (hidden * real).sum(1) / real.sum(1).clamp_min(1)  # (B, H)
        peak = hidden.masked_fill(~real, torch.finfo(hidden.dtype).min).amax(1)  # (B, H)
        weight = torch.sigmoid(self.gate)  # (H,)
        return weight * peak + (1 - weight) * mean


class TopLayersBidirectional(BidirectionalFromLayer):
    """Bidirectional in the top `top` layers only, whatever the depth: a parametrised mask that names itself."""

    name = "top_bidirectional"

    def __init__(self, top: int = 1) -> None:
        super().__init__(layer=0)
        self.top = top

    def apply(self, model) -> None:  # the depth is known once the model is
        self.layer = model.config.num_hidden_layers - self.top
        super().apply(model)

    def __getstate__(self) -> dict:
        return {"top": self.top}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    @property
    def label(self) -> str:
        return f"top{self.top}"


def logging_overlay(folder) -> str:
    loggers = [
        {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(folder)}},
        {
            "class_path": "lightning.pytorch.loggers.WandbLogger",
            "init_args": {"save_dir": str(folder), "offline": True},
        },
    ]
    path = folder / "logging.yaml"
    path.write_text(yaml.safe_dump({"trainer": {"logger": loggers}}))
    return str(path)


def fit_with(tmp_path, components: dict):
    """Two training steps with checkpoints (configs/debug/smoke.yaml), the components given in one YAML file."""
    config = tmp_path / "extension.yaml"
    config.write_text(yaml.safe_dump({"model": {"init_args": components}}))
    args = ["fit", "--config=configs/trainer/default.yaml", *quick("early_cue", "ls_llama")]
    args += ["--config=configs/debug/smoke.yaml", f"--config={config}", f"--config={logging_overlay(tmp_path)}"]
    return main([*args, "--trainer.enable_progress_bar=false", "--model.optimizer.init_args.lr=0.05"])


def exported_logits_equal(model, folder) -> None:
    """Export -> from_pretrained gives the same logits and the same head weights, pooling included."""
    from lightning_modules import LabelSupervisedModule

    model.eval().save_pretrained(folder)
    loaded = LabelSupervisedModule.from_pretrained(folder)
    ids, mask = torch.randint(3, 50, (3, 7)), torch.tensor([[1] * 7, [1] * 5 + [0] * 2, [1] * 2 + [0] * 5])
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids, mask), model(ids, mask))
    for key, value in model.head.state_dict().items():
        torch.testing.assert_close(loaded.head.state_dict()[key], value)


def test_a_pooling_with_weights_and_a_parametrised_mask_train_log_under_their_names_and_export_whole(
    tmp_path, monkeypatch
):
    """The newcomer's path: one module (this file), one config, and the model trains, logs under the components'
    own names and exports whole (the pooling's trained gate travels with the head)."""
    monkeypatch.setenv(ENV_VAR, __name__)  # the user's own package, allowed by name
    spec = {
        "mask": {"class_path": f"{__name__}.TopLayersBidirectional", "init_args": {"top": 1}},
        "pooling": "gated_mean_max",
    }
    cli = fit_with(tmp_path, spec)
    model = cli.model
    assert model.mask.label == "top1" and model.mask.layer == 1 and model.pooling.label == "gated_mean_max"
    assert "head.pooling.gate" in model.trainable_state_dict() and model.head.pooling.gate.abs().sum() > 0  # trained
    csv, wandb = cli.trainer.loggers
    assert csv.name.endswith("-top1-gated_mean_max")  # <dataset>-<backbone>-<mask>-<pooling>
    assert {"mask:top1", "pooling:gated_mean_max"} <= set(wandb.experiment.tags)
    checkpoint = torch.load(cli.trainer.checkpoint_callback.best_model_path, weights_only=True)
    assert "head.pooling.gate" in checkpoint["state_dict"]  # checkpoints hold it: only trained weights are kept
    exported_logits_equal(model, tmp_path / "exported")


def test_attention_pooling_trains_from_yaml_and_survives_export(tmp_path):
    cli = fit_with(tmp_path, {"pooling": "attention"})
    model = cli.model
    assert type(model.pooling).__name__ == "AttentionPooling" and model.head.pooling.query.abs().sum() > 0
    exported_logits_equal(model, tmp_path / "exported")
