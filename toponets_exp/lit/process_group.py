"""Release the torch.distributed process group before the interpreter shuts down, whatever the backend."""

from __future__ import annotations

import atexit

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


def destroy_process_group() -> None:
    """Destroy the default process group if this process still has one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


class ReleaseProcessGroup(Callback):
    """Destroys the process group at process exit, before the interpreter's own shutdown.

    Lightning does this for NCCL only. A gloo group (CPU ranks, and the CPU side of mixed runs) left to the
    interpreter's shutdown can abort a rank that has finished ("terminate called without an active exception",
    SIGABRT), which fails a DDP job whose results are already written. The group is destroyed at exit rather than at
    teardown because rank 0 may still evaluate (and a spawned rank still hands its results back) after the trainer
    ends.
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            atexit.unregister(destroy_process_group)  # once per process, however many stages run
            atexit.register(destroy_process_group)
