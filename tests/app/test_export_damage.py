"""A damaged export folder fails to load with one line naming the folder (or file) and what it should hold."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from helpers import synthetic_module
from safetensors.torch import load_file, save_file

from lightning_modules import BidirectionalMask, LabelSupervisedModule, MaxPooling


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """A shipped-code export (bidirectional, max pooling, LoRA merged) and an adapter export of the same model."""
    root = tmp_path_factory.mktemp("exports")
    module = synthetic_module(mask=BidirectionalMask(), pooling=MaxPooling())
    return {
        "remote_code": module.save_pretrained(root / "remote_code", merge=True),
        "adapter": module.save_pretrained(root / "adapter"),
    }


def damaged(exports, kind, tmp_path):
    folder = tmp_path / f"damaged_{kind}"
    shutil.copytree(exports[kind], folder)
    return folder


def load_error(folder, error=Exception) -> str:
    with pytest.raises(error) as info:
        LabelSupervisedModule.from_pretrained(folder)
    message = str(info.value)
    assert "\n" not in message and str(folder) in message, message
    return message


@pytest.mark.parametrize(
    ("kind", "removed"),
    [
        ("remote_code", "modeling_ls_llama.py"),
        ("remote_code", "ls_llama_portable.py"),
        ("remote_code", "config.json"),
        ("remote_code", "model.safetensors"),
        ("remote_code", "head.safetensors"),
        ("adapter", "adapter_model.safetensors"),
        ("adapter", "head.safetensors"),
    ],
)
def test_a_missing_file_is_named(exports, tmp_path, kind, removed):
    folder = damaged(exports, kind, tmp_path)
    (folder / removed).unlink()
    message = load_error(folder, FileNotFoundError)
    assert (
        f"damaged {kind!r} export, {removed} missing" in message
        and "expected ls_llama.json, head.safetensors" in message
    )


def test_a_folder_that_is_no_export(tmp_path):
    message = load_error(tmp_path, FileNotFoundError)
    assert "ls_llama.json not found" in message and "head.safetensors" in message
    missing = tmp_path / "nowhere"
    assert "is no folder" in load_error(missing, FileNotFoundError)


def test_a_head_of_another_shape_is_named(exports, tmp_path):
    folder = damaged(exports, "remote_code", tmp_path)
    head = load_file(folder / "head.safetensors")
    save_file({"score.weight": torch.zeros(3, head["score.weight"].shape[1])}, folder / "head.safetensors")
    message = load_error(folder, ValueError)
    assert "head.safetensors: the head holds {'score.weight': (3, 32)}" in message
    assert "(4 labels, hidden size 32, pooling max) expects {'score.weight': (4, 32)}" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not an export config (JSON with 'format' and 'model')"),
        (json.dumps({"format": "gguf", "model": {}}), "unknown format 'gguf', expected one of"),
    ],
)
def test_a_broken_export_config_is_named(exports, tmp_path, content, expected):
    folder = damaged(exports, "remote_code", tmp_path)
    (folder / "ls_llama.json").write_text(content)
    assert expected in load_error(folder, ValueError)


def test_a_config_json_of_another_model_is_named(exports, tmp_path):
    folder = damaged(exports, "remote_code", tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "llama"}))
    assert "expected model_type 'ls_llama' with the backbone's config under 'backbone'" in load_error(
        folder, ValueError
    )


def test_weights_that_do_not_fit_the_config_are_named(exports, tmp_path):
    folder = damaged(exports, "remote_code", tmp_path)
    weights = load_file(folder / "model.safetensors")
    lost = sorted(key for key in weights if key.startswith("backbone.layers.1."))
    save_file({k: v for k, v in weights.items() if k not in lost}, folder / "model.safetensors")
    message = load_error(folder, ValueError)
    assert f"the backbone's weights do not fit its config.json: {len(lost)} missing" in message
