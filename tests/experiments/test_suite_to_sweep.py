"""One grid definition: a suite becomes the equivalent W&B sweep (`--to-sweep`), and the committed sweep is the one
generated from its suite; what W&B's grid cannot say gets a one-line error."""

from __future__ import annotations

import pytest
import yaml

from experiments import suite as suite_module
from experiments.suite import ROOT, SuiteError, load_suite
from experiments.wandb_sweep import sweep, sweep_yaml

SWEEP_SUITE = ROOT / "experiments" / "sweeps" / "lr_grid_suite.yaml"


def test_the_committed_sweep_is_generated_from_its_suite():
    committed = (ROOT / "experiments" / "sweeps" / "lr_grid.yaml").read_text()
    assert committed == sweep_yaml(load_suite(SWEEP_SUITE), SWEEP_SUITE)
    spec = yaml.safe_load(committed)
    assert spec["parameters"] == {"model.optimizer.init_args.lr": {"values": [1e-5, 2e-5, 5e-5, 8e-5, 1e-4, 2e-4]}}


def test_to_sweep_prints_a_grid_over_the_differing_overrides(tmp_path, capsys):
    runs = [
        {
            "id": f"r{lr}-{r}",
            "configs": ["configs/debug/fdr.yaml"],
            "overrides": [f"--model.optimizer.init_args.lr={lr}", f"--model.init_args.lora_r={r}", "--x.y=1"],
        }
        for lr in ("1e-4", "2e-4")
        for r in (4, 8)
    ]
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"name": "g", "base_configs": ["configs/trainer/default.yaml"], "runs": runs}))
    assert suite_module.main([str(path), "--to-sweep"]) == 0
    spec = yaml.safe_load(capsys.readouterr().out)
    assert spec["parameters"] == {
        "model.optimizer.init_args.lr": {"values": [1e-4, 2e-4]},
        "model.init_args.lora_r": {"values": [4, 8]},
    }
    assert spec["command"][4:] == [
        "--config=configs/trainer/default.yaml",
        "--config=configs/debug/fdr.yaml",
        "--config=experiments/sweeps/wandb_online.yaml",
        "--x.y=1",
        "${args}",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["runs"][0].update(configs=["configs/debug/smoke.yaml"]), "2 config stacks"),
        (lambda s: s.update(seeds=[0, 1]), "seeds and test-only runs have no W&B grid"),
        (lambda s: s["runs"].pop(), "not every combination"),
        (lambda s: s["runs"][0].update(overrides=["--flag"]), "'--flag' is not --key=value"),
    ],
)
def test_suites_that_are_no_grid_get_one_line(tmp_path, change, message):
    spec = {
        "name": "g",
        "runs": [
            {"id": f"r{a}{b}", "configs": ["configs/debug/fdr.yaml"], "overrides": [f"--a={a}", f"--b={b}"]}
            for a in (1, 2)
            for b in (3, 4)
        ],
    }
    change(spec)
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SuiteError, match=message):
        sweep(load_suite(path))
