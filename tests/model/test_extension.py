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
