"""Configs and checkpoints are data: nothing in them imports or runs code outside the allowed packages.

The probe module is the standard library's `this`, which prints the Zen of Python when imported: a config naming
`this.Zen` must be refused before anything imports it.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch
import yaml
from helpers import quick
from jsonargparse import ActionConfigFile, ArgumentParser

from app.config_guard import ConfigSecurityError, check_class_paths
from core.class_paths import ENV_VAR
from lightning_modules import LabelSupervisedModule
from main import main

BASE = [*quick("early_cue", "ls_llama"), "--config=configs/debug/fdr.yaml"]
EVIL = "this.Zen"


@pytest.fixture(autouse=True)
def _this_not_imported():
    sys.modules.pop("this", None)
    yield
    assert "this" not in sys.modules, "a refused class path was imported"


def nested(location: str) -> dict:
    """A config that names EVIL at `location`."""
    spec = {"class_path": EVIL}
    return {
        "model.mask": {"model": {"mask": spec}},
        "model.pooling.init_args": {"model": {"pooling": {"class_path": "MaxPooling", "init_args": {"x": spec}}}},
        "model.optimizer": {"model": {"optimizer": {**spec, "init_args": {"lr": 0.1}}}},
        "data": {"data": spec},
        "trainer.callbacks": {"trainer": {"callbacks": [{"class_path": "ModelCheckpoint"}, spec]}},
        "trainer.logger": {"trainer": {"logger": spec}},
    }[location]


@pytest.mark.parametrize(
    "location",
    ["model.mask", "model.pooling.init_args", "model.optimizer", "data", "trainer.callbacks", "trainer.logger"],
)
def test_class_path_outside_allowed_packages_in_a_config_file_is_refused(tmp_path, location):
    config = tmp_path / "evil.yaml"
    config.write_text(yaml.safe_dump(nested(location)))
    with pytest.raises(ConfigSecurityError) as error:
        main(["fit", *BASE, f"--config={config}"])
    message = str(error.value)
    assert str(config) in message and repr(EVIL) in message and f"{ENV_VAR}=this" in message
    assert location.split(".")[0] in message and "\n" not in message


def test_class_path_in_command_line_and_dict_configs_is_refused():
    with pytest.raises(ConfigSecurityError, match="command line: --model.mask.class_path: class"):
        main(["fit", *BASE, f"--model.mask.class_path={EVIL}"])
    with pytest.raises(ConfigSecurityError, match="--trainer.callbacks"):
        main(["fit", *BASE, '--trainer.callbacks+={"class_path": "this.Zen"}'])
    with pytest.raises(ConfigSecurityError, match=r"config dict: fit\.model\.mask\.class_path: class .this\.Zen."):
        main({"fit": {"model": {"mask": {"class_path": EVIL}}}})


def test_a_class_path_given_as_a_plain_value_is_refused(capsys):
    from app.errors import one_line

    with pytest.raises(SystemExit):  # a class-typed argument: jsonargparse's policy (restrict_imports)
        main(["fit", *BASE, f"--model.optimizer={EVIL}"])
    assert "class 'this.Zen' is not in an allowed package" in capsys.readouterr().err
    with pytest.raises(ValueError, match="model.mask: class 'this.Zen'") as error:  # a name or class path: ours
        main(["fit", *BASE, f"--model.mask={EVIL}"])
    assert one_line(error.value).startswith("error: model.mask: class 'this.Zen' is not in an allowed package")


def test_allowed_and_short_class_paths_pass_and_the_allowlist_can_be_extended(monkeypatch):
    allowed = [
        ["fit", "--model.mask.class_path=lightning_modules.BidirectionalMask"],
        {"trainer": {"callbacks": [{"class_path": "LearningRateMonitor"}]}},
        ["--trainer.logger={class_path: lightning.pytorch.loggers.CSVLogger}"],
    ]
    for args in allowed:
        assert check_class_paths(args) is None  # no exception
    user_class = ["--model.optimizer.class_path=bitsandbytes.optim.AdamW8bit"]
    with pytest.raises(ConfigSecurityError, match=f"{ENV_VAR}=bitsandbytes.optim"):
        check_class_paths(user_class)
    monkeypatch.setenv(ENV_VAR, "my_lab,bitsandbytes.optim")
    assert check_class_paths(user_class) is None
    with pytest.raises(ConfigSecurityError):  # a prefix allows its own sub-packages only, not look-alikes
        check_class_paths(["--model.mask.class_path=my_lab_evil.Mask"])


def test_yaml_python_tags_are_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    config = tmp_path / "tagged.yaml"
    config.write_text(f'model: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(ConfigSecurityError, match="refused YAML tag"):
        main(["fit", *BASE, f"--config={config}"])
    parser = ArgumentParser(exit_on_error=False)  # jsonargparse's own loader, without our guard
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_argument("--model", type=dict)
    with pytest.raises(Exception):  # noqa: B017  (any parse error will do; what matters is the marker)
        parser.parse_args([f"--config={config}"])
    assert not marker.exists()


def evil_checkpoint(tmp_path, **hyper_parameters) -> str:
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": hyper_parameters, "pytorch-lightning_version": "2.6.0"}, path)
    return str(path)


def test_checkpoint_hyper_parameters_are_checked_before_loading(tmp_path):
    from app.checkpointing import load_trained
    from core.class_paths import ClassPathNotAllowed

    path = evil_checkpoint(tmp_path, num_labels=2, mask={"class_path": EVIL})
    with pytest.raises(ConfigSecurityError, match=r"hyper_parameters.*mask\.class_path: class 'this\.Zen'"):
        load_trained(path)
    with pytest.raises(ConfigSecurityError, match="this.Zen"):
        main(["validate", *BASE, f"--ckpt_path={path}"])
    with pytest.raises(ClassPathNotAllowed, match="model.mask: class 'this.Zen'"):  # without the app's guard
        LabelSupervisedModule.load_from_checkpoint(path)
    path = evil_checkpoint(tmp_path, num_labels=2, _instantiator="builtins.exec")
    with pytest.raises(ConfigSecurityError, match="_instantiator"):
        load_trained(path)
    with pytest.raises(Exception, match="builtins.exec"):  # Lightning's own allowlist of instantiators
        LabelSupervisedModule.load_from_checkpoint(path)


class Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_pickled_code_in_a_checkpoint_is_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "pickle.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"x": Payload(str(marker))}}, path)
    with pytest.raises(Exception, match="Weights only load failed"):
        LabelSupervisedModule.load_from_checkpoint(path)
    with pytest.raises(Exception, match="Weights only load failed"):
        main(["validate", *BASE, f"--ckpt_path={path}"])
    assert not marker.exists()
