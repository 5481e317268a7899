"""Fully sharded data parallel training (PyTorch FSDP2, `fully_shard`) for backbones that do not fit one device.

`LoRAFSDPStrategy` is a Lightning strategy (`trainer.strategy`, configs/strategy/fsdp.yaml) that shards the
`LabelSupervisedModule` itself, so no module code changes:
- wrap policy by transformer block: every block of the backbone (found like the attention probe finds them, for any
  family) is one FSDP unit, then the rest of the backbone (embeddings, final norm) and the head;
- LoRA-aware: FSDP2 shards each parameter on its own (DTensor), so frozen bf16 weights, fp32 LoRA adapters and the
  head live in the same unit with their own dtype and `requires_grad`; gradients exist and are reduce-scattered for
  the trained weights only;
- checkpoints hold only what trained: the state dict is gathered to rank 0 without the frozen parameters
  (`StateDictOptions(full_state_dict=True, ignore_frozen_params=True)`), as plain tensors; a 70B backbone is never
  gathered to save 50 MB of adapters;
- every process shards (data-parallel size = nodes x devices); `trainer.num_nodes` spans nodes as for DDP.

FSDP2 runs on CUDA (NCCL) and, for tests, on CPU processes (gloo); Lightning's own `FSDPStrategy` (FSDP1) refuses a
CPU and needs uniform dtypes inside a unit, which LoRA on a bf16 backbone breaks.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from lightning.fabric.plugins.collectives.torch_collective import default_pg_timeout
from lightning.fabric.utilities.optimizer import _optimizers_to_device
from lightning.pytorch import Trainer
from lightning.pytorch.strategies import ModelParallelStrategy
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn
from typing_extensions import override

from lightning_modules.backbone.masks import decoder_layers


def shard_units(module: nn.Module) -> list[nn.Module]:
    """The FSDP units of a `LabelSupervisedModule`, innermost first: each transformer block, the backbone (what its
    blocks leave: embeddings, final norm), the head."""
    _, blocks = decoder_layers(module.backbone)
    return [*blocks, module.backbone, module.head]


def shard(module: nn.Module, mesh: Any, reshard_after_forward: bool = True) -> None:
    """Apply `fully_shard` to every unit of `shard_units(module)` on the data-parallel `mesh` (once)."""
    from torch.distributed.fsdp import FSDPModule, fully_shard  # noqa: PLC0415

    if isinstance(module.backbone, FSDPModule):
        return
    for unit in shard_units(module):
        fully_shard(unit, mesh=mesh, reshard_after_forward=reshard_after_forward)


class LoRAFSDPStrategy(ModelParallelStrategy):
    """FSDP2 over every process, one unit per transformer block, checkpoints with the trained weights only.

    Args:
        reshard_after_forward: free each block's gathered weights after its forward (less memory, one more
            all-gather in the backward); False keeps them until the backward (faster, ZeRO-2-like).
        process_group_backend: `nccl` on GPUs, `gloo` on CPUs; None = Lightning's choice for the accelerator.
        timeout: timeout of collective operations.
    """

    strategy_name = "lora_fsdp"

    def __init__(
        self,
        reshard_after_forward: bool = True,
        process_group_backend: str | None = None,
        timeout: timedelta | None = default_pg_timeout,
    ) -> None:
        super().__init__(
            data_parallel_size="auto",
            tensor_parallel_size=1,
            save_distributed_checkpoint=False,
            process_group_backend=process_group_backend,
            timeout=timeout,
        )
        self.reshard_after_forward = reshard_after_forward

    @override
    def setup_environment(self) -> None:
        self._data_parallel_size = self.num_nodes * self.num_processes  # every process holds a shard of the data
        super().setup_environment()

    @override
    def setup(self, trainer: Trainer) -> None:
        # ModelParallelStrategy.setup, with our sharding instead of a `configure_model` hook in the module
        assert self.model is not None and self.accelerator is not None
        self.accelerator.setup(trainer)
        shard(self.lightning_module, self.device_mesh["data_parallel"], self.reshard_after_forward)
        self.model = self.precision_plugin.convert_module(self.model)
        self.model_to_device()
        self.barrier()
        if trainer.state.fn == TrainerFn.FITTING:
            self.setup_optimizers(trainer)
        self.setup_precision_plugin()
        if trainer.state.fn == TrainerFn.FITTING:
            _optimizers_to_device(self.optimizers, self.root_device)

    @override
    def lightning_module_state_dict(self) -> dict[str, Any]:
        """The trained weights only (LoRA adapters and head, or all with full finetuning), gathered on rank 0."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict  # noqa: PLC0415

        options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
        assert self.model is not None
        return get_model_state_dict(self.model, options=options)
