"""The backbone every method shares: loading, finetuning (LoRA, full, head-only, QLoRA), FSDP, compile, and the
attention-mask strategies with the probe that checks them on the real model."""

import logging

# peft imports bitsandbytes where it is installed (the qlora extra), and bitsandbytes >= 0.50 then logs, on every
# run, that its optional CPU 4-bit kernel from the `kernels` package is missing (it falls back to its own): quiet
# that one logger, before anything imports peft.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
