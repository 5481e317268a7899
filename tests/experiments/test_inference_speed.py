"""The inference-speed benchmark's tiny variant runs and measures what it says (no timing is asserted)."""

from __future__ import annotations

import logging

import pytest
import torch

from experiments.benchmarks import inference_speed


@pytest.fixture(autouse=True)
def _restore_globals():
    """The script sets torch threads and logger levels for its process; give the test process its own back."""
    threads = torch.get_num_threads()
    levels = {name: logging.getLogger(name).level for name in ("lightning.pytorch", "transformers", "datasets")}
    yield
    torch.set_num_threads(threads)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_help_lists_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        inference_speed.parse_args(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--json" in out and "--pipeline-batch-sizes" in out and "main.py predict" in out


def test_tiny_run_compares_the_same_predictions(shared_data, llama2_tokenizer, tmp_path):
    result = inference_speed.main(["--tiny", "--json", str(tmp_path / "speed.json")])
    assert result["texts"] == 48 and result["max_prob_difference"] < 1e-4  # the same model, texts and tokenizer
    tuned_sizes = {(row["side"], row["batch_size"]) for row in result["tuning"]}
    assert tuned_sizes == {("ours", 4), ("ours", 16), ("pipeline", 1), ("pipeline", 8)}
    for side, summary in result["summary"].items():
        tuned = [row for row in result["tuning"] if row["side"] == side]
        assert summary["batch_size"] == max(tuned, key=lambda row: row["cpu_examples_per_s"])["batch_size"]
        assert len(result["repeats"][side]) == 1 and summary["cpu_examples_per_s"] > 0
        run = result["repeats"][side][0]
        assert run["cpu_examples_per_s"] * run["cpu_s"] == pytest.approx(48)
    assert result["cpu_speedup"] == pytest.approx(
        result["summary"]["ours"]["cpu_examples_per_s"] / result["summary"]["pipeline"]["cpu_examples_per_s"]
    )
    assert (tmp_path / "speed.json").exists()
