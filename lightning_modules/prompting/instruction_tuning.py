"""`InstructionTuningModule`: the paper's instruction-tuning baseline (Table 2, LLaMA-2-7B, section 3.2).

The causal LM is finetuned (LoRA, the LS configs' settings) to answer the paper's prompt with the label's name:
each training example is prompt + answer (verbalization + the token ending the assistant's turn: the chat
template's, else eos; `PromptEncoder(with_response=True)`), and the loss is the causal-LM cross-entropy of the
answer tokens only: prompt and padding tokens are no targets (`decoding.response_cross_entropy`). Evaluation is
`PromptedLM`'s: generation parsed into a label (`test/score`, what the tables use), and the likelihood of each
label's answer, summed (`ll_acc`) and per token (`lln_acc`). The paper's recipe (batch 16, lr 2e-4, 10k steps
under 50k training examples, 50k above) is in configs/method/instruction_tuning.yaml. NER works the same way, the
answer listing the entities.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from typing_extensions import override

from lightning_modules.backbone.builders import log_trainable
from lightning_modules.prompting.decoding import causal_lm_parts, forward_hidden, response_cross_entropy
from lightning_modules.prompting.zero_shot import PromptedLM
from lightning_modules.training import FinetunedModule


class InstructionTuningModule(PromptedLM, FinetunedModule):
    """Instruction tuning of a causal LM on prompt -> label-name answers; evaluated like `ZeroShotModule`.

    The arguments are `PromptedLM`'s (prompt, readings), `FinetunedModule`'s (`finetuning`: `lora` or `full`;
    LoRA; `optimizer`: None = AdamW(lr=2e-4), the paper's instruction tuning) and `BackboneModule`'s.
    """

    method: ClassVar[str] = "instruction_tuning"
    with_response: ClassVar[bool] = True
    default_lr: ClassVar[float] = 2e-4  # paper section 3.2

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.finetuning not in ("lora", "full"):
            raise ValueError(f"model.finetuning must be lora or full for instruction tuning, got {self.finetuning!r}")
        self.lm = self.finetune(self.lm)
        log_trainable(self)

    # ---------------------------------------------------------------------------------------------- training
    @override
    def on_fit_start(self) -> None:
        self.train()  # `from_pretrained` returns a model in eval mode and Lightning keeps modules' modes

    @override
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        body, head = causal_lm_parts(self.lm)
        hidden = forward_hidden(body, batch["lm_input_ids"], batch["lm_attention_mask"])  # (B, S, H)
        loss = response_cross_entropy(hidden, head, batch["lm_input_ids"], batch["response_mask"])
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"training loss is {loss.item()} at global step {self.global_step} (batch {batch_idx}, examples "
                f"{batch['example_ids'].tolist()})"
            )
        if getattr(self.trainer._logger_connector, "should_update_logs", True):  # `self.log` costs ~1 ms a call
            self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=len(hidden))
        return loss
