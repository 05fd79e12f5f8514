"""Language-model data: token streams packed into (input, target) blocks, and the embedded English corpus."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from toponets_exp.data.resumable import check_loader_args, eval_loader, train_loader
from toponets_exp.data.tokenizer import ByteTokenizer
from toponets_exp.checks import integer
from toponets_exp.errors import ConfigError


def check_lm_sizes(vocab_size: int, block_size: int, tokenizer_size: int) -> None:
    """The model's vocabulary must hold every token id; the context must be positive."""
    integer("data.block_size", block_size, 1, accepted="a positive integer (the context length)")
    integer("data.vocab_size", vocab_size, tokenizer_size, accepted=f"an integer >= the tokenizer's {tokenizer_size} "
            "tokens (it sizes the model's embedding and output layers)")


class BlockDataset(Dataset):
    """Consecutive blocks of a 1-D token array: item i is (tokens[iB : iB+B], tokens[iB+1 : iB+B+1]), B = block_size."""

    def __init__(self, tokens: np.ndarray, block_size: int) -> None:
        if tokens.ndim != 1 or len(tokens) < block_size + 1:
            raise ConfigError(f"a split has {len(tokens)} tokens, fewer than data.block_size + 1 = {block_size + 1}; "
                              "use more data or a smaller data.block_size")
        self.tokens, self.block_size = tokens, block_size

    def __len__(self) -> int:
        return (len(self.tokens) - 1) // self.block_size

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        start = i * self.block_size
        chunk = torch.from_numpy(self.tokens[start:start + self.block_size + 1].astype(np.int64))
        return chunk[:-1], chunk[1:]


def split_tokens(tokens: np.ndarray, val_fraction: float, test_fraction: float) -> dict[str, np.ndarray]:
    """Contiguous train | val | test split of a token stream (held-out text follows, never interleaves, training)."""
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError("data.val_fraction and data.test_fraction must be in (0, 1) and sum below 1")
    n = len(tokens)
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    n_train = n - n_val - n_test
    return {"train": tokens[:n_train], "val": tokens[n_train:n_train + n_val], "test": tokens[n_train + n_val:]}


def embedded_text() -> str:
    """English prose shipped with CPython: the help topics of `pydoc_data.topics`, in sorted topic order."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key].strip() for key in sorted(topics))


class EmbeddedTextDataModule(L.LightningDataModule):
    """Byte-level language modelling on `embedded_text()`: deterministic contiguous split, fixed-length blocks."""

    def __init__(self, vocab_size: int = 256, block_size: int = 128, batch_size: int = 32, val_fraction: float = 0.05,
                 test_fraction: float = 0.05, num_workers: int = 0, pin_memory: bool = False) -> None:
        super().__init__()
        check_loader_args(batch_size, num_workers)
        self.tokenizer = ByteTokenizer()
        check_lm_sizes(vocab_size, block_size, self.tokenizer.vocab_size)
        self.save_hyperparameters()
        self.splits: dict[str, BlockDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        """Build the splits once (idempotent)."""
        if self.splits:
            return
        hp = self.hparams
        tokens = np.asarray(self.tokenizer.encode_batch([embedded_text()])[0], dtype=np.uint8)
        for name, part in split_tokens(tokens, hp.val_fraction, hp.test_fraction).items():
            self.splits[name] = BlockDataset(part, hp.block_size)

    def _loader(self, name: str) -> DataLoader:
        """The DataLoader of an evaluation split."""
        hp = self.hparams
        return eval_loader(self, self.splits[name], hp.batch_size, hp.num_workers, hp.pin_memory)

    def train_dataloader(self) -> DataLoader:
        """Training batches, shuffled per epoch and resumable mid-epoch."""
        hp = self.hparams
        return train_loader(self, self.splits["train"], hp.batch_size, hp.num_workers, hp.pin_memory)

    def val_dataloader(self) -> DataLoader:
        """Validation batches."""
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        """Test batches."""
        return self._loader("test")
