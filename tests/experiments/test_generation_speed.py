"""The generation-speed benchmark (experiments/benchmarks/generation_speed.py, issue 19) on the tiny random LLaMA
with the LLaMA-2 tokenizer and real SST-2 prompts: our decoding and `model.generate` give the same token ids, the
rates are the timed examples over the timed seconds, and a difference between the two ways is counted. No timing
is asserted (a shared CPU's numbers are noise for a test)."""

from __future__ import annotations

import json

import pytest
import torch

from experiments.benchmarks import generation_speed


@pytest.fixture(autouse=True)
def _restore_threads():
    """The script sets torch threads for its process; give the test process its own back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_help_lists_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        generation_speed.parse_args(["--help"])
    assert exit_info.value.code == 0
    assert "--json" in capsys.readouterr().out


def test_generation_speed_tiny(shared_data, llama2_tokenizer, tmp_path):
    result = generation_speed.main(["--tiny", "--json", str(tmp_path / "g.json")])
    assert json.loads((tmp_path / "g.json").read_text())["args"]["tiny"] is True
    assert result["stop_ids"]["eos"] == [2]  # LLaMA-2's </s>; no chat template, no other generation-config eos
    assert set(result["runs"]) == {4, 8}
    for run in result["runs"].values():
        assert run["mismatches"] == 0 and run["first_mismatch"] is None  # the same token ids for all 16 prompts
        assert sorted(run["answers"]) == list(range(16)) and run["max_answer_tokens"] <= 8
        assert run["prompts"]["shared_prefix_tokens"] > 0  # the instruction before the sentence: shared by ours
        ways = run["ways"]
        for way in ways.values():  # 16 examples x 2 passes; the warm-up batch is not counted
            assert way["examples"] == 32
            assert way["examples_per_s"] * way["seconds"] == pytest.approx(32)
            assert way["cpu_examples_per_s"] * way["cpu_seconds"] == pytest.approx(32)
        assert run["cpu_speedup"] == pytest.approx(
            ways["ours"]["cpu_examples_per_s"] / ways["generate"]["cpu_examples_per_s"]
        )
        assert run["speedup"] == pytest.approx(ways["ours"]["examples_per_s"] / ways["generate"]["examples_per_s"])
        assert 0 < ways["ours"]["prefill_cpu_share"] < 1
    assert [(row["batch"], row["way"]) for row in result["rows"]] == [
        (b, w) for b in (4, 8) for w in ("ours", "generate")
    ]


def test_a_differing_answer_is_counted(shared_data, llama2_tokenizer, monkeypatch):
    """If `generate` answered one example differently, the benchmark would say so."""
    args = generation_speed.parse_args(["--tiny", "--examples", "4", "--max-new-tokens", "3", "--repeats", "1"])
    model, tokenizer = generation_speed.load(args)
    data = generation_speed.SST2(data_dir=str(shared_data / "sst2"), tokenizer=tokenizer)
    encoder = generation_speed.PromptEncoder(generation_speed.ClassificationPrompt())
    batches = generation_speed.prompt_batches(data, encoder, 4, 4)
    answer = generation_speed.answer_generate

    def one_differs(*call):
        out = answer(*call)
        out["answers"][1] = [*out["answers"][1][:-1], 7]
        return out

    with torch.inference_mode():
        assert generation_speed.measure(args, model, batches, [2])["mismatches"] == 0
        monkeypatch.setattr(generation_speed, "answer_generate", one_differs)
        result = generation_speed.measure(args, model, batches, [2])
    assert result["mismatches"] == 1 and result["first_mismatch"]["generate"][-1] == 7
