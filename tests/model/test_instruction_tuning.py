"""Instruction tuning (`prompting.instruction_tuning`): the loss is the causal-LM loss of the answer tokens
only, batches hold prompt + answer with the right mask, a tiny model learns to answer, checkpoints hold only the
LoRA weights and rebuild the model, and the configs (the paper's recipe over the LS LoRA settings) run."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import ROOT, TINY_LLAMA
from lightning.pytorch import Trainer, seed_everything

from datamodules import EarlyCueClassification
from lightning_modules import InstructionTuningModule
from lightning_modules.prompting.decoding import causal_lm_parts, forward_hidden, positions, response_cross_entropy
from lightning_modules.prompting.prompt_encoder import PromptEncoder
from lightning_modules.prompting.prompts import ClassificationPrompt
from main import main

FAST = ["--trainer.fast_dev_run=1", "--trainer.accelerator=cpu", "--trainer.logger=false", "--trainer.callbacks=[]"]
TINY = ["--model.init_args.backbone=null", f"--model.init_args.backbone_config={json.dumps(TINY_LLAMA)}"]
TINY += ["--model.init_args.dtype=float32", "--trainer.precision=32-true"]


def test_loss_ignores_prompt_and_padding_targets():
    """With the hidden states fixed, changing the target ids of prompt and padding positions leaves the loss as it
    was; changing one answer token changes it."""
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 50, bias=False)
    hidden = torch.randn(2, 7, 8)
    input_ids = torch.tensor([[0, 0, 11, 12, 13, 30, 2], [0, 14, 15, 16, 17, 31, 2]])  # pad | prompt | answer, eos
    response = torch.tensor([[0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 1, 1]])
    loss = response_cross_entropy(hidden, head, input_ids, response)
    changed = input_ids.clone()
    changed[response == 0] = torch.randint(3, 50, (int((response == 0).sum()),))  # other prompt and pad targets
    assert torch.equal(response_cross_entropy(hidden, head, changed, response), loss)
    changed[0, 5] = 40  # another answer
    assert not torch.allclose(response_cross_entropy(hidden, head, changed, response), loss)
    # the answer tokens predicted from the position before each: 2 rows x (answer + eos)
    logits = head(hidden[:, 4:6]).reshape(-1, 50)
    expected = torch.nn.functional.cross_entropy(logits, input_ids[:, 5:7].reshape(-1))
    assert torch.allclose(loss, expected)


@pytest.fixture
def cue_data(llama2_tokenizer):
    """The synthetic 4-class task (labels music, politics, science, sports) with the LLaMA-2 tokenizer."""
    return EarlyCueClassification(
        tokenizer=llama2_tokenizer, num_train=160, num_val=16, num_test=32, batch_size=16, eval_batch_size=32
    )


def tuned_for(data, **kwargs) -> InstructionTuningModule:
    return InstructionTuningModule(
        backbone_config=kwargs.pop("backbone_config", TINY_LLAMA),
        task=data.task,
        num_labels=data.num_labels,
        label_names=data.label_names,
        pad_token_id=data.pad_token_id,
        vocab_size=data.vocab_size,
        **kwargs,
    )


def test_batches_hold_prompt_then_answer_with_the_answer_masked_in(cue_data):
    module = tuned_for(cue_data)
    cue_data.trainer = Trainer(accelerator="cpu", logger=False)
    cue_data.trainer.strategy.connect(module)
    cue_data.setup("fit")
    loader = cue_data.train_dataloader()
    batch = next(iter(loader))
    tokenizer, names = cue_data.tokenizer, cue_data.label_names
    for row in range(len(batch["labels"])):
        ids, mask = batch["lm_input_ids"][row], batch["lm_attention_mask"][row]
        answer = ids[batch["response_mask"][row].bool()].tolist()
        label = names[batch["labels"][row]]
        assert answer == tokenizer(label, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        assert ids[-len(answer) :].tolist() == answer and mask[-1] == 1  # left padding: the answer ends the row
        pads = int((mask == 0).sum())
        assert batch["response_mask"][row][:pads].sum() == 0 and (ids[:pads] == cue_data.pad_token_id).all()
        prompt = ids[pads : len(ids) - len(answer)].tolist()
        text = tokenizer.decode(prompt)
        assert "You are a classification model." in text and text.rstrip().endswith("### Output:")
        assert "label from ['music', 'politics', 'science', 'sports']." in text


def test_training_loss_is_the_causal_lm_loss_of_the_answer_tokens(cue_data):
    """The module's loss equals transformers' own causal-LM loss with every prompt and padding label set to -100,
    and does not change with more left padding."""
    module = tuned_for(cue_data).eval()
    cue_data.trainer = Trainer(accelerator="cpu", logger=False)
    cue_data.trainer.strategy.connect(module)
    cue_data.setup("fit")
    batch = next(iter(cue_data.train_dataloader()))
    with torch.no_grad():
        body, head = causal_lm_parts(module.lm)
        hidden = forward_hidden(body, batch["lm_input_ids"], batch["lm_attention_mask"])
        loss = response_cross_entropy(hidden, head, batch["lm_input_ids"], batch["response_mask"])
        labels = batch["lm_input_ids"].masked_fill(batch["response_mask"] == 0, -100)
        mask = batch["lm_attention_mask"]
        reference = module.lm(
            input_ids=batch["lm_input_ids"], attention_mask=mask, position_ids=positions(mask), labels=labels
        ).loss
        assert torch.allclose(loss, reference, atol=1e-5)
        padded = torch.nn.functional.pad(batch["lm_input_ids"], (5, 0), value=cue_data.pad_token_id)
        padded_mask = torch.nn.functional.pad(mask, (5, 0))
        padded_response = torch.nn.functional.pad(batch["response_mask"], (5, 0))
        hidden = forward_hidden(body, padded, padded_mask)
        assert torch.allclose(response_cross_entropy(hidden, head, padded, padded_response), loss, atol=1e-5)


def test_instruction_tuning_teaches_a_tiny_model_to_answer_with_label_names(cue_data):
    """Untrained, a tiny random LM names no label; after 30 steps every answer is exactly a label name."""
    seed_everything(0)
    module = tuned_for(cue_data, finetuning="full", max_new_tokens=4, optimizer=lambda p: torch.optim.AdamW(p, 5e-3))
    trainer = Trainer(
        accelerator="cpu",
        max_epochs=3,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
    trainer.test(module, datamodule=cue_data)
    assert float(trainer.callback_metrics["test/invalid_rate"]) > 0.5
    trainer.fit(module, datamodule=cue_data)
    assert trainer.global_step == 30
    trainer.test(module, datamodule=cue_data)
    assert float(trainer.callback_metrics["test/invalid_rate"]) == 0.0
    assert {record["read_as"] for record in module._answers} == {"exact"}


@pytest.mark.slow
def test_instruction_tuning_learns_the_synthetic_task(llama2_tokenizer):
    """240 steps: both readings reach accuracy 1 on the early-cue task (about a minute on a CPU)."""
    seed_everything(0)
    data = EarlyCueClassification(tokenizer=llama2_tokenizer, num_train=320, num_val=32, num_test=32, batch_size=16)
    config = {**TINY_LLAMA, "hidden_size": 64, "intermediate_size": 128}
    module = tuned_for(
        data,
        backbone_config=config,
        finetuning="full",
        max_new_tokens=4,
        optimizer=lambda p: torch.optim.AdamW(p, 5e-3),
    )
    trainer = Trainer(
        accelerator="cpu",
        max_epochs=12,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, datamodule=data)
    trainer.test(module, datamodule=data)
    assert float(trainer.callback_metrics["test/gen_acc"]) == float(trainer.callback_metrics["test/ll_acc"]) == 1.0


def test_checkpoint_holds_only_lora_weights_and_rebuilds_the_model(tmp_path, llama2_tokenizer):
    data = tmp_path / "data.yaml"
    data.write_text(
        json.dumps(
            {
                "data": {
                    "class_path": "datamodules.EarlyCueClassification",
                    "init_args": {
                        "num_train": 16,
                        "num_val": 8,
                        "num_test": 8,
                        "batch_size": 8,
                        "tokenizer": llama2_tokenizer,
                    },
                }
            }
        )
    )
    checkpoint = {
        "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
        "init_args": {"dirpath": str(tmp_path / "ckpt"), "save_last": True},
    }
    args = [
        "--config",
        str(data),
        "--config",
        "configs/backbone/smollm2-135m.yaml",
        "--config",
        "configs/method/instruction_tuning.yaml",
        *TINY,
        "--trainer.accelerator=cpu",
        "--trainer.logger=false",
        "--trainer.max_steps=2",
        "--trainer.max_epochs=1",
        "--model.max_new_tokens=3",
    ]
    cli = main(["fit", *args, f"--trainer.callbacks=[{json.dumps(checkpoint)}]"])
    path = tmp_path / "ckpt" / "last.ckpt"
    state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    trained = {name for name, p in cli.model.named_parameters() if p.requires_grad}
    assert set(state) == trained and all("lora_" in name for name in state)
    restored = InstructionTuningModule.load_from_checkpoint(path)
    assert type(restored.prompt) is ClassificationPrompt and restored.encoder.with_response
    for name, value in state.items():
        assert torch.equal(restored.state_dict()[name], value)
    tested = main(["test", *args, "--trainer.callbacks=[]", f"--ckpt_path={path}"])
    assert torch.equal(tested.model.state_dict()[sorted(state)[0]], state[sorted(state)[0]])
    assert "test/ll_acc" in tested.trainer.callback_metrics


def test_paper_recipe_over_the_ls_lora_settings(llama2_tokenizer, shared_data):
    """configs/method/instruction_tuning.yaml on a backbone config: the paper's batch 16, lr 2e-4 and 10k steps, the
    backbone's LoRA r=12, alpha=32, dropout=0.1 (kept across the switch of model class)."""
    args = [
        "fit",
        "--config",
        "configs/data/sst2.yaml",
        "--config",
        "configs/backbone/llama2-7b.yaml",
        "--config",
        "configs/method/instruction_tuning.yaml",
        *TINY,
        f"--data.init_args.tokenizer={llama2_tokenizer}",
        "--data.init_args.max_train_examples=32",
        "--data.init_args.max_eval_examples=16",
    ]
    cli = main([*args, *FAST])
    model = cli.model
    assert model.method == "instruction_tuning" and cli.trainer.global_step == 1
    assert (model.hparams.lora_r, model.hparams.lora_alpha, model.hparams.lora_dropout) == (12, 32, 0.1)
    assert cli.trainer.optimizers[0].param_groups[0]["initial_lr"] == pytest.approx(2e-4)
    assert cli.datamodule.batch_size == 16
    assert cli.config.fit.trainer.max_steps == 10000 and cli.config.fit.trainer.max_epochs == -1
    assert isinstance(model.encoder, PromptEncoder) and model.encoder.with_response


@pytest.mark.parametrize("data", ["experiments/repro_smollm2/right_context_ner.yaml", "configs/data/twitter_fin.yaml"])
def test_instruction_tuning_config_runs_one_batch(data, llama2_tokenizer):
    """One training and one validation batch, for a sequence task and (the answer listing entities) NER."""
    if "twitter" in data and not (ROOT / "../shared/data/twitter_fin").is_dir():
        pytest.skip("../shared/data/twitter_fin is absent")
    tokenizer = [] if "right_context" in data else [f"--data.init_args.tokenizer={llama2_tokenizer}"]
    cli = main(
        [
            "fit",
            "--config",
            data,
            "--config",
            "configs/backbone/smollm2-135m.yaml",
            "--config",
            "configs/method/instruction_tuning.yaml",
            *TINY,
            *tokenizer,
            *FAST,
        ]
    )
    assert cli.trainer.state.finished and cli.trainer.global_step == 1
    assert "val/score" in cli.trainer.callback_metrics
