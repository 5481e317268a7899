"""The backbone every method shares: loading, finetuning (LoRA, full, head-only, QLoRA), FSDP, compile, and the
attention-mask strategies with the probe that checks them on the real model."""
