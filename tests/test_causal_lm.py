"""CausalLM: next-token loss and perplexity against NumPy references, optimizer groups, a short real fit."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import lightning as L
import numpy as np
import pytest
import torch
from scipy.special import log_softmax
from torch import nn
from torch.utils.data import DataLoader

from toponets_exp.data.text import BlockDataset
from toponets_exp.lit import CausalLM
from toponets_exp.lit.optim import warmup_cosine
from toponets_exp.models.outputs import logits_of

LR, FLOOR = 3e-2, 0.1
OPTIM = {"optimizer": partial(torch.optim.AdamW, lr=LR, betas=(0.9, 0.95), weight_decay=0.1),
         "lr_schedule": partial(warmup_cosine, warmup_steps=3, min_lr_ratio=FLOOR), "no_decay_1d": True}


class Bigram(nn.Module):
    """Embedding → LayerNorm → Linear: logits (B, T, V) from the current token only."""

    def __init__(self, vocab: int = 11, width: int = 16) -> None:
        super().__init__()
        self.wte, self.ln, self.head = nn.Embedding(vocab, width), nn.LayerNorm(width), nn.Linear(width, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.ln(self.wte(idx)))


@dataclass
class Output:
    """An HF-style model output."""

    logits: torch.Tensor


class WithLogits(Bigram):
    """The same model returning an object with `.logits` (as transformers' causal LMs do)."""

    def forward(self, idx: torch.Tensor) -> Output:
        return Output(super().forward(idx))


def nll_reference(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-token negative log-likelihood in float64."""
    logp = log_softmax(logits.astype(np.float64), axis=-1)
    return -np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]


def cyclic_tokens(n: int, vocab: int = 11, seed: int = 0) -> np.ndarray:
    """A mostly deterministic next-token pattern (t → t+1 mod vocab) with 10% random tokens."""
    rng = np.random.default_rng(seed)
    tokens = np.arange(n) % vocab
    noise = rng.random(n) < 0.1
    tokens[noise] = rng.integers(0, vocab, noise.sum())
    return tokens.astype(np.uint16)


@pytest.mark.parametrize("net_cls", [Bigram, WithLogits])
def test_loss_is_mean_next_token_cross_entropy(net_cls: type[nn.Module]) -> None:
    torch.manual_seed(0)
    module = CausalLM(net_cls(), **OPTIM)
    idx, targets = torch.randint(0, 11, (3, 7)), torch.randint(0, 11, (3, 7))
    loss, logits, _ = module._loss((idx, targets))
    assert logits.shape == (3, 7, 11)
    expected = nll_reference(logits.detach().numpy(), targets.numpy()).mean()
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_logits_of_accepts_tensor_object_and_tuple_outputs_only() -> None:
    logits = torch.randn(2, 5, 11)
    for output in (logits, Output(logits), (logits, None), [logits]):
        assert logits_of(output) is logits
    for wrong in (None, {"logits": logits}, (), (None, logits), logits[0], Output(logits[0])):
        with pytest.raises(TypeError, match=r"\(batch, tokens, vocab\) logits"):
            logits_of(wrong)


def test_adamw_decays_only_matrices() -> None:
    module = CausalLM(Bigram(), **OPTIM)
    module.trainer = L.Trainer(max_steps=10, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                               enable_model_summary=False)
    optimizer = module.configure_optimizers()["optimizer"]
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["betas"] == (0.9, 0.95)
    decay = {id(p) for g in optimizer.param_groups if g["weight_decay"] == 0.1 for p in g["params"]}
    for name, p in module.net.named_parameters():
        assert (id(p) in decay) == (p.ndim >= 2), name


def test_fit_learns_and_logs_loss_and_perplexity(tmp_path) -> None:
    L.seed_everything(0, verbose=False)
    train = BlockDataset(cyclic_tokens(4000), 16)
    val = BlockDataset(cyclic_tokens(800, seed=1), 16)
    module = CausalLM(WithLogits(), **OPTIM)
    trainer = L.Trainer(max_steps=40, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        gradient_clip_val=1.0, default_root_dir=tmp_path)
    before = trainer.validate(module, DataLoader(val, batch_size=10), verbose=False)[0]
    trainer.fit(module, DataLoader(train, batch_size=8, shuffle=True), DataLoader(val, batch_size=10))
    assert {"train/loss_step", "train/loss_epoch", "val/loss", "val/ppl"} <= set(trainer.logged_metrics)
    after = trainer.test(module, DataLoader(val, batch_size=10), verbose=False)[0]
    assert set(after) == {"test/loss", "test/ppl"} and {"val/loss", "val/ppl"} <= set(before)
    assert after["test/loss"] < before["val/loss"] - 1.0

    module.eval()
    with torch.no_grad():
        pairs = [(module(x).numpy(), y.numpy()) for x, y in DataLoader(val, batch_size=10)]
    nll = np.concatenate([nll_reference(lg, y).ravel() for lg, y in pairs])
    assert after["test/loss"] == pytest.approx(nll.mean(), rel=1e-4)
    assert after["test/ppl"] == pytest.approx(np.exp(nll.mean()), rel=1e-4)
    lr = trainer.optimizers[0].param_groups[0]["lr"]
    assert lr == pytest.approx(LR * FLOOR, rel=1e-2)  # warm-up + cosine ended at the floor
