"""Benchmarks (experiments/benchmarks): every script's tiny variant runs and its numbers are sane.

No timing is asserted (the numbers of a shared CPU are noise for a test); what is asserted would break if a
benchmark measured the wrong thing: the pipelines see the same evaluation tokens, padding is counted right, the
packed prototype computes the padded logits, the 7B arithmetic matches a model built on the meta device.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import subprocess
import sys

import pytest
import torch
from helpers import ROOT
from transformers import AutoConfig, AutoModel

from experiments.benchmarks import (
    bidirectional_cost,
    data_scale,
    evaluation_cost,
    framework_overhead,
    gpu_check,
    llama_7b_shape,
    reference_vs_ours,
    speed_options,
)

SCRIPTS = [
    reference_vs_ours,
    framework_overhead,
    evaluation_cost,
    bidirectional_cost,
    llama_7b_shape,
    data_scale,
    speed_options,
    gpu_check,
]
HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None


@pytest.fixture(autouse=True)
def _restore_globals():
    """The scripts set torch threads and a logger level for their process; give the test process its own back."""
    threads, level = torch.get_num_threads(), logging.getLogger("lightning.pytorch").level
    yield
    torch.set_num_threads(threads)
    logging.getLogger("lightning.pytorch").setLevel(level)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.__name__.rsplit(".", 1)[-1])
def test_help_lists_options(script, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.parse_args(["--help"])
    assert exit_info.value.code == 0
    assert "--json" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------- reference vs ours
def test_reference_vs_ours_tiny(shared_data, llama2_tokenizer, tmp_path):
    result = reference_vs_ours.main(["--tiny", "--packed", "--peer", "--json", str(tmp_path / "r.json")])
    runs = {name: results[0] for name, results in result["runs"].items()}
    assert set(runs) == {"reference", "peer", "ours", "ours_packed"}
    for run in runs.values():
        assert run["train"]["steps"] == 10  # 12 steps, 2 of warm-up
        train = run["train"]  # the rates are the timed window's examples over its seconds (batch 8, 10 steps)
        assert train["examples_per_s"] * train["seconds"] == pytest.approx(8 * 10)
        assert train["cpu_examples_per_s"] * train["cpu_seconds"] == pytest.approx(8 * 10)
        assert run["eval"]["examples"] == 96 and 0.0 <= run["accuracy"] <= 1.0
    # the same 96 test sentences, tokenized alike: identical real-token counts in all three pipelines
    assert len({run["eval_padding"]["real_tokens"] for run in runs.values()}) == 1
    # the reference pads to the longest of its map batch; ours per length-grouped batch; packed not at all
    ref, ours, packed = runs["reference"], runs["ours"], runs["ours_packed"]
    assert ref["eval_padding"]["padding_fraction"] > ours["eval_padding"]["padding_fraction"] > 0
    assert ref["train_padding"]["padding_fraction"] > ours["train_padding"]["padding_fraction"]
    # the peer pads per batch of length-grouped examples: far less than the reference's map-batch padding
    assert ref["train_padding"]["padding_fraction"] > runs["peer"]["train_padding"]["padding_fraction"] > 0
    assert result["summary"]["peer"]["train_vs_peer"] == 1.0
    assert packed["train_padding"]["padding_fraction"] == packed["eval_padding"]["padding_fraction"] == 0
    assert result["summary"]["reference"]["train_speedup"] == 1.0
    assert (tmp_path / "r.json").exists()


# ------------------------------------------------------------------------------------------- evaluation cost
def test_evaluation_cost_tiny(shared_data, llama2_tokenizer, tmp_path):
    result = evaluation_cost.main(["--tiny", "--step-log", "--profile", "5", "--json", str(tmp_path / "e.json")])
    summary = result["summary"]
    assert summary["examples"] == 96 and summary["batches"] == {"ours": 12, "peer": 12}
    rows = {row["timed"]: row for row in summary["rows"]}
    assert set(rows) == {*evaluation_cost.TIMED, "ours_call_step_log"}
    assert math.isfinite(summary["step_log_ms_per_batch"])
    assert all(len(result["seconds"][name]) == 2 and row["cpu_s"] > 0 for name, row in rows.items())
    assert all(0 < rows[name]["fixed_share"] < 1 for name in ("ours_call", "peer_call"))
    # our whole call and the bare forward over our own batches predict alike (set-up in the call or before)
    accuracy = summary["accuracy"]
    assert accuracy["ours_call"] == accuracy["ours_call_setup"] == pytest.approx(accuracy["ours_bare"], abs=1e-7)
    assert accuracy["ours_call_step_log"] == accuracy["ours_call"]  # the ablation logs differently, same weights
    assert 0.0 <= accuracy["peer_call"] <= 1.0
    assert "cumulative" in result["profile"] and (tmp_path / "e.json").exists()


# ------------------------------------------------------------------------------------------ framework overhead
def test_framework_overhead_tiny(shared_data, llama2_tokenizer):
    result = framework_overhead.main(["--tiny", "--variants", "lightning", "quiet"])
    assert set(result["summary"]) == {"lightning", "quiet"}
    repeat = result["repeats"][0]["lightning"]
    assert repeat["bare_s_per_step"] > 0 and repeat["lightning_s_per_step"] > 0
    assert repeat["bare_total_s"] >= 10 * repeat["bare_s_per_step"]  # the whole loop covers its timed steps
    assert math.isfinite(repeat["steady_overhead"]) and math.isfinite(repeat["total_overhead"])
    # same model, batches, optimizer, schedule, clipping and dropout draws: the same training trajectory
    assert math.isfinite(repeat["bare_final_loss"])
    assert repeat["lightning_final_loss"] == pytest.approx(repeat["bare_final_loss"], rel=1e-4)
    assert set(result["summary"]["lightning"]["noise"]) == set(repeat)
    quiet = result["repeats"][0]["quiet"]  # the ablation trains the same way, it only logs less
    assert quiet["lightning_final_loss"] == pytest.approx(repeat["bare_final_loss"], rel=1e-4)


# ------------------------------------------------------------------------------------------- bidirectional cost
def test_bidirectional_cost_tiny():
    result = bidirectional_cost.main(["--tiny", "--seq-len", "12"])
    rows = {row["variant"]: row for row in result["rows"]}
    assert set(rows) == {"causal", "bidirectional", "bidir_from_1"}  # each passed the attention probe
    assert rows["causal"]["vs_causal"] == 1.0
    params_mib = 64 * 32000 * 4 / 2**20  # the embedding alone
    for row in rows.values():
        assert row["s_per_step"] > 0 and len(result["times"][row["variant"]]) == 4
        assert row["peak_memory_mib"] > params_mib and row["peak_above_static_mib"] > 0


# ------------------------------------------------------------------------------------------------ 7B shape
def test_llama_7b_parameter_arithmetic_matches_meta_model():
    config = dict(llama_7b_shape.SHAPES["7b"])
    hf_config = AutoConfig.for_model(config.pop("model_type"), **config)
    with torch.device("meta"):
        model = AutoModel.from_config(hf_config)
    counts = llama_7b_shape.parameter_counts(llama_7b_shape.SHAPES["7b"], ["q_proj", "v_proj"], 12)
    assert counts["backbone"] == sum(p.numel() for p in model.parameters()) == 6_607_343_616
    assert counts["lora"] == 32 * 2 * 12 * (4096 + 4096)
    budget = {row["lora_targets"]: row for row in llama_7b_shape.memory_budget("7b")}
    assert budget["qv"]["trainable_params"] == counts["lora"] + 4096 * 2
    assert budget["all-linear"]["trainable_params"] > 4 * budget["qv"]["trainable_params"]
    assert 12 < budget["qv"]["weights_bf16_gib"] < 12.5


@pytest.mark.parametrize("targets", ["qv", "all-linear"])
def test_meta_build_materialises_bf16_without_fp32_copy(targets):
    args = llama_7b_shape.parse_args(["--shape", "tiny", "--device", "cpu", "--lora-targets", targets])
    setting = {
        "lora_targets": targets,
        "weights": "bf16",
        "attn": "sdpa",
        "gradient_checkpointing": "off",
        "mask": "bidirectional",
    }
    module = llama_7b_shape.build(args, setting)  # runs the attention probe: really bidirectional
    base = {name: p for name, p in module.backbone.named_parameters() if "lora_" not in name}
    assert all(p.dtype == torch.bfloat16 and p.device.type == "cpu" for p in base.values())
    assert all(torch.isfinite(p.float()).all() for p in base.values())
    trainable = [p for p in module.parameters() if p.requires_grad]
    assert all(p.dtype == torch.float32 for p in trainable)
    counts = llama_7b_shape.parameter_counts(args.shape_config, llama_7b_shape.TARGETS[targets], 12)
    assert sum(p.numel() for p in trainable) == counts["lora"] + counts["head"]
    rotary = module.backbone.base_model.model.rotary_emb
    fresh = type(rotary)(rotary.config)
    torch.testing.assert_close(rotary.inv_freq, fresh.inv_freq)


def test_llama_7b_shape_tiny_cpu_run():
    result = llama_7b_shape.main(
        [
            "--shape",
            "tiny",
            "--device",
            "cpu",
            "--seq-lens",
            "8",
            "16",
            "--steps",
            "1",
            "--warmup-steps",
            "1",
            "--masks",
            "causal",
            "--peak-tflops",
            "1",
        ]
    )
    rows = result["rows"]
    assert [row["seq_len"] for row in rows] == [8, 16] and not any("error" in row for row in rows)
    for row in rows:
        assert row["tokens_per_s"] > 0 and row["peak_memory_gib"] > 0 and 0 < row["mfu"] < 1
    assert rows[1]["tflops_per_s"] / rows[1]["tokens_per_s"] > rows[0]["tflops_per_s"] / rows[0]["tokens_per_s"]


# ------------------------------------------------------------------------------------------------ data scale
def test_data_scale_first_then_cached(shared_data, llama2_tokenizer, tmp_path):
    first = data_scale.measure("conll2003", str(tmp_path), 128, tiny=True)
    cached = data_scale.measure("conll2003", str(tmp_path), 128, tiny=True)
    assert first["sentences"] == cached["sentences"] == 2000
    assert first["tokens"] == cached["tokens"] > 2000 * 10  # CoNLL sentences are ~14 words, more subwords
    assert not first["tokenized_from_cache"] and cached["tokenized_from_cache"]
    assert cached["peak_rss_mib"] >= cached["rss_after_imports_mib"] > 0


def test_llama_7b_shape_build_only_reports_bf16_weights():
    result = llama_7b_shape.main(["--shape", "tiny", "--device", "cpu", "--build-only", "--masks", "causal"])
    (row,) = result["rows"]
    assert row["weight_dtypes"] == ["torch.bfloat16"] and row["build_s"] > 0 and row["peak_rss_gib"] > 0
    counts = llama_7b_shape.parameter_counts(llama_7b_shape.SHAPES["tiny"], ["q_proj", "v_proj"], 12)
    assert row["weights_gib"] * 2**30 == counts["backbone"] * 2


# ------------------------------------------------------------------------------------ QLoRA memory arithmetic
def test_70b_shape_and_qlora_budget():
    config = dict(llama_7b_shape.SHAPES["70b"])
    hf_config = AutoConfig.for_model(config.pop("model_type"), **config)
    with torch.device("meta"):
        model = AutoModel.from_config(hf_config)
    counts = llama_7b_shape.parameter_counts(llama_7b_shape.SHAPES["70b"], ["q_proj", "v_proj"], 12)
    assert counts["backbone"] == sum(p.numel() for p in model.parameters()) == 68_714_504_192  # GQA k/v included
    rows = {(r["shape"], r["weights"], r["checkpointing"]): r for r in llama_7b_shape.qlora_budget()}
    assert rows[("7b", "bf16", "off")]["fits_24gb"] and not rows[("13b", "bf16", "on")]["fits_24gb"]
    assert rows[("13b", "nf4", "off")]["fits_24gb"] and not rows[("70b", "nf4", "on")]["fits_24gb"]
    for shape in ("7b", "13b", "70b"):  # NF4 weights take a bit over a quarter of bf16 (embeddings stay fp32)
        ratio = rows[(shape, "nf4", "off")]["weights_gib"] / rows[(shape, "bf16", "off")]["weights_gib"]
        assert 0.26 < ratio < 0.31
    assert rows[("7b", "bf16", "on")]["activations_gib"] < rows[("7b", "bf16", "off")]["activations_gib"] / 10


@pytest.mark.skipif(not HAS_BNB, reason="bitsandbytes is not installed (pip install -e '.[qlora]')")
def test_nf4_bytes_per_weight_match_bitsandbytes():
    import bitsandbytes as bnb

    weight = torch.randn(256, 1024)
    quantized = bnb.nn.Params4bit(weight, requires_grad=False, quant_type="nf4", compress_statistics=True).to("cpu")
    state = quantized.quant_state
    stored = quantized.numel() * quantized.element_size() + state.absmax.numel() * state.absmax.element_size()
    stored += state.state2.absmax.numel() * state.state2.absmax.element_size()
    assert stored / weight.numel() == pytest.approx(llama_7b_shape.NF4_BYTES_PER_WEIGHT, rel=0.01)


# ------------------------------------------------------------------------------------------- speed options
def test_speed_options_tiny_checkpointing_saves_activation_memory():
    result = speed_options.main(["--tiny", "--variants", "eager", "checkpointing"])
    rows = {row["variant"]: row for row in result["rows"]}
    assert set(rows) == {"eager", "checkpointing"} and result["peak_gflops"] > 0
    for row in rows.values():
        assert row["s_per_step"] > 0 and 0 < row["mfu"] < 1
    assert rows["checkpointing"]["above_static_mib"] < rows["eager"]["above_static_mib"]


def test_training_flops_agree_with_the_7b_formula():
    module = llama_7b_shape.build_module(
        llama_7b_shape.parse_args(["--shape", "tiny", "--device", "cpu"]),
        {
            "lora_targets": "qv",
            "weights": "fp32-autocast",
            "attn": "sdpa",
            "gradient_checkpointing": "off",
            "mask": "causal",
        },
    )
    counts = llama_7b_shape.parameter_counts(llama_7b_shape.SHAPES["tiny"], ["q_proj", "v_proj"], 12)
    expected = llama_7b_shape.model_flops(llama_7b_shape.SHAPES["tiny"], counts, 8, 64)
    assert speed_options.training_flops(module, 8, 64) == expected


@pytest.mark.slow
def test_speed_options_tiny_compiled():
    result = speed_options.main(["--tiny", "--variants", "eager", "compiled", "--no-memory"])
    compiled = next(row for row in result["rows"] if row["variant"] == "compiled")
    assert compiled["compile_s"] > 0 and compiled["s_per_step"] > 0


# ----------------------------------------------------------------------------------------------- GPU check
def test_gpu_check_cpu_tiny_lora_step(tmp_path):
    result = gpu_check.main(["--cpu-tiny", "--sections", "lora_step", "--out", str(tmp_path / "c.json")])
    assert json.loads((tmp_path / "c.json").read_text())["lora_step"]["tokens_per_s"] > 0
    step = result["lora_step"]
    assert step["peak_memory_gib"] > 0 and 0 < step["mfu"] < 1


@pytest.mark.slow
def test_gpu_check_cpu_tiny_whole_script(tmp_path):
    """The whole command in its own process (FSDP initialises torch.distributed)."""
    out = tmp_path / "check.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "experiments.benchmarks.gpu_check", "--cpu-tiny", "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert not any("error" in result[name] for name in ("probe", "lora_step", "qlora_step", "fsdp_step"))
    assert {result["probe"][f"sdpa/{mask}"] for mask in gpu_check.MASKS} == {"passed"}
    assert result["probe"]["flash_attention_2"].startswith("skipped")
    assert result["fsdp_step"]["checkpoint_only_adapters_and_head"] and result["fsdp_step"]["steps"] == 2
