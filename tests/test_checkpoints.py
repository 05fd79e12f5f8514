"""load_weights: every published TopoNets layout and our Lightning checkpoints round-trip; bad files fail clearly."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from topo_callbacks import topo_callback
from toponets_exp.errors import CheckpointError
from toponets_exp.lit import ImageClassifier
from toponets_exp.models import gpt, load_weights, resnet18, resnet50, vit_b_32
from toponets_exp.models.gpt_neo import gpt_neo_125m

IMAGES = torch.randn(2, 3, 16, 16)
TOKENS = torch.randint(0, 50, (2, 12))


class Opaque:
    """A pickled Python object that weights_only loading must refuse."""


def seeded(seed: int, build, **kwargs) -> nn.Module:
    """A backbone built under a given seed, in eval mode."""
    torch.manual_seed(seed)
    return build(**kwargs).eval()


def logits(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Forward output as a tensor (HF models return an object with .logits)."""
    with torch.no_grad():
        out = net(x)
    return getattr(out, "logits", out)


def assert_round_trip(source: nn.Module, target: nn.Module, path: Path, x: torch.Tensor, fmt: str = "auto") -> None:
    """`target` differs from `source` before loading and computes the same outputs after."""
    assert not torch.allclose(logits(source, x), logits(target, x))
    assert load_weights(target, path, fmt) is target
    torch.testing.assert_close(logits(target, x), logits(source, x))


TINY_RESNET = dict(num_classes=10, small_input=True, blurpool=True)
TINY_VIT = dict(num_classes=10, image_size=16, patch_size=4, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32)
TINY_GPT = dict(vocab_size=50, block_size=12, n_layer=2, n_head=2, n_embd=16)
TINY_NEO = dict(vocab_size=50, num_layers=2, num_heads=2, hidden_size=16, max_position_embeddings=16)


# --- published layouts --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["auto", "plain"])
def test_official_resnet18_plain_state_dict(tmp_path, fmt):
    source = seeded(0, resnet18, **TINY_RESNET)
    torch.save(source.state_dict(), tmp_path / "all_topo_tau_10.0.pt")
    assert_round_trip(source, seeded(1, resnet18, **TINY_RESNET), tmp_path / "all_topo_tau_10.0.pt", IMAGES, fmt)


def test_official_resnet50_plain_state_dict_through_the_builder(tmp_path):
    source = seeded(0, resnet50, **TINY_RESNET)
    torch.save(source.state_dict(), tmp_path / "resnet50.pt")
    torch.manual_seed(1)
    loaded = resnet50(**TINY_RESNET, pretrained_path=str(tmp_path / "resnet50.pt")).eval()
    torch.testing.assert_close(logits(loaded, IMAGES), logits(source, IMAGES))


def test_official_vit_state_dict_under_model_with_training_state(tmp_path):
    source = seeded(0, vit_b_32, **TINY_VIT)
    optimizer = torch.optim.SGD(source.parameters(), lr=0.1, momentum=0.9)
    source(IMAGES).sum().backward()
    optimizer.step()
    source.eval()
    torch.save({"model": source.state_dict(), "optimizer": optimizer.state_dict(), "lr_scheduler": {"last_epoch": 3},
                "epoch": 3, "args": argparse.Namespace(model="vit_b_32", lr=0.003)}, tmp_path / "tau_10.0.pt")
    assert_round_trip(source, seeded(1, vit_b_32, **TINY_VIT), tmp_path / "tau_10.0.pt", IMAGES)


def test_official_nanogpt_state_dict_under_model_with_compile_prefix(tmp_path):
    source = seeded(0, gpt, **TINY_GPT)
    state = {f"_orig_mod.{k}": v for k, v in source.state_dict().items()}
    torch.save({"model": state, "model_args": dict(n_layer=2, n_head=2, n_embd=16, block_size=12, bias=False,
                                                   vocab_size=64, dropout=0.0),
                "iter_num": 5, "best_val_loss": torch.tensor(3.2), "config": {"batch_size": 8, "topo": True}},
               tmp_path / "tau_50.0.pt")
    assert_round_trip(source, seeded(1, gpt, **TINY_GPT), tmp_path / "tau_50.0.pt", TOKENS, "model")


def test_gpt_neo_huggingface_directory(tmp_path):
    source = seeded(0, gpt_neo_125m, **TINY_NEO)
    source.save_pretrained(tmp_path / "gpt-neo")
    assert_round_trip(source, seeded(1, gpt_neo_125m, **TINY_NEO), tmp_path / "gpt-neo", TOKENS)
    torch.manual_seed(2)
    built = gpt_neo_125m(**TINY_NEO, pretrained_path=str(tmp_path / "gpt-neo")).eval()
    torch.testing.assert_close(logits(built, TOKENS), logits(source, TOKENS))


def test_gpt_neo_directory_of_another_size_is_refused(tmp_path):
    seeded(0, gpt_neo_125m, **{**TINY_NEO, "num_layers": 3}).save_pretrained(tmp_path / "gpt-neo")
    with pytest.raises(CheckpointError, match=r"unexpected: transformer\.h\.2\."):
        load_weights(seeded(1, gpt_neo_125m, **TINY_NEO), tmp_path / "gpt-neo")


# --- our Lightning checkpoints ------------------------------------------------------------------------------------

def test_lightning_checkpoint_from_a_real_fit(tmp_path):
    net = seeded(0, vit_b_32, **TINY_VIT)
    module = ImageClassifier(net, num_classes=10, optimizer=partial(torch.optim.SGD, lr=0.05))
    data = DataLoader(TensorDataset(torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))), batch_size=4)
    topo = topo_callback(net, ["encoder.layers.*.mlp.0"], weight=1.0, factor=2.0)
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[topo])
    trainer.fit(module, data)
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    net.eval()
    assert_round_trip(net, seeded(1, vit_b_32, **TINY_VIT), tmp_path / "last.ckpt", IMAGES)


def test_lightning_checkpoint_of_a_compiled_backbone(tmp_path):
    source = seeded(0, gpt, **TINY_GPT)
    state = {f"net._orig_mod.{k}": v for k, v in source.state_dict().items()}
    state["perplexity.val_.total"] = torch.tensor(0.0)  # module state outside the backbone is ignored
    torch.save({"state_dict": state, "epoch": 1, "global_step": 10}, tmp_path / "epoch1.ckpt")
    assert_round_trip(source, seeded(1, gpt, **TINY_GPT), tmp_path / "epoch1.ckpt", TOKENS, "lightning")


# --- clear errors -------------------------------------------------------------------------------------------------

def test_unknown_layout_names_the_accepted_formats(tmp_path):
    torch.save({"weights": seeded(0, resnet18, **TINY_RESNET).state_dict(), "step": 3}, tmp_path / "w.pt")
    with pytest.raises(CheckpointError, match=r"top-level keys \[weights, step\].*plain: .*model: .*lightning: "):
        load_weights(resnet18(**TINY_RESNET), tmp_path / "w.pt")
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="holds a list, not a dict"):
        load_weights(resnet18(**TINY_RESNET), tmp_path / "list.pt")


def test_explicit_format_that_does_not_fit(tmp_path):
    torch.save(seeded(0, resnet18, **TINY_RESNET).state_dict(), tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match=r"is not in format 'model' \(a dict with the state dict under 'model'"):
        load_weights(resnet18(**TINY_RESNET), tmp_path / "plain.pt", "model")
    with pytest.raises(CheckpointError, match="no 'state_dict' keys starting with 'net.'"):
        torch.save({"state_dict": {"backbone.fc.weight": torch.zeros(1)}}, tmp_path / "other.ckpt")
        load_weights(resnet18(**TINY_RESNET), tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="format='safetensors' is not supported; use auto or one of plain, model"):
        load_weights(resnet18(**TINY_RESNET), tmp_path / "plain.pt", "safetensors")


def test_key_mismatch_lists_missing_and_unexpected_keys(tmp_path):
    torch.save(seeded(0, resnet18, **TINY_RESNET).state_dict(), tmp_path / "blurpool.pt")
    plain = resnet18(num_classes=10, small_input=True, blurpool=False)
    with pytest.raises(CheckpointError) as err:
        load_weights(plain, tmp_path / "blurpool.pt")
    message = str(err.value)
    assert "does not fit ResNet" in message
    assert "missing: layer2.0.conv1.weight, layer2.0.downsample.0.weight" in message
    assert "unexpected: layer2.0.conv1.blur_filter, layer2.0.conv1.conv.weight" in message
    assert "(12 in all)" in message


def test_shape_mismatch_is_reported(tmp_path):
    torch.save(seeded(0, resnet18, **TINY_RESNET).state_dict(), tmp_path / "ten.pt")
    with pytest.raises(CheckpointError, match=r"shape mismatch: fc.weight \(10, 512\) \(model \(5, 512\)\)"):
        load_weights(resnet18(**{**TINY_RESNET, "num_classes": 5}), tmp_path / "ten.pt")


def test_unsafe_or_unreadable_files(tmp_path):
    torch.save({"model": {}, "extra": Opaque()}, tmp_path / "pickled.pt")
    with pytest.raises(CheckpointError, match=r"cannot be read with torch.load\(weights_only=True\)"):
        load_weights(resnet18(**TINY_RESNET), tmp_path / "pickled.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_weights(resnet18(**TINY_RESNET), tmp_path / "garbage.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_weights(resnet18(**TINY_RESNET), tmp_path / "missing.pt")


def test_directories_need_a_huggingface_model_and_config(tmp_path):
    with pytest.raises(CheckpointError, match="only a transformers model can load; the backbone is a ResNet"):
        load_weights(resnet18(**TINY_RESNET), tmp_path)
    with pytest.raises(CheckpointError, match="has no config.json"):
        load_weights(gpt_neo_125m(**TINY_NEO), tmp_path)
    with pytest.raises(CheckpointError, match="is a directory, but format='plain' expects a file"):
        load_weights(resnet18(**TINY_RESNET), tmp_path, "plain")
    torch.save({}, tmp_path / "weights.pt")
    with pytest.raises(CheckpointError, match="format 'huggingface' expects a model directory"):
        load_weights(gpt_neo_125m(**TINY_NEO), tmp_path / "weights.pt", "huggingface")


def _bad_files(ckpt, tmp):
    """(name, path, extra overrides, expected message part) for each kind of unusable checkpoint."""
    data = ckpt.read_bytes()
    (tmp / "truncated.ckpt").write_bytes(data[: len(data) // 3])
    (tmp / "empty.ckpt").write_bytes(b"")
    (tmp / "text.ckpt").write_text("not a checkpoint\n")
    (tmp / "random.ckpt").write_bytes(bytes(range(256)) * 64)
    torch.save([1, 2, 3], tmp / "list.ckpt")
    torch.save({"epoch": 3, "notes": "no weights"}, tmp / "keys.ckpt")
    read = "cannot be read with torch.load(weights_only=True)"
    return [
        ("truncated", tmp / "truncated.ckpt", [], read),
        ("empty", tmp / "empty.ckpt", [], read),
        ("text", tmp / "text.ckpt", [], read),
        ("random bytes", tmp / "random.ckpt", [], read),
        ("not a dict", tmp / "list.ckpt", [], "holds a list, not a dict; expected"),
        ("unknown keys", tmp / "keys.ckpt", [], "has top-level keys [epoch, notes], which fit no known format"),
        ("other architecture", ckpt, ["model=resnet50"], "does not fit"),
    ]


@pytest.mark.slow
def test_unusable_checkpoints_give_one_clear_line_through_run_py(tiny_checkpoint, tmp_path):
    from cli import run_cli

    for name, path, extra, message in _bad_files(tiny_checkpoint, tmp_path):
        out = tmp_path / f"eval-{name.replace(' ', '_')}"
        proc = run_cli("task=eval", f"ckpt_path={path}", *extra, f"hydra.run.dir={out}")
        assert proc.returncode == 2, (name, proc.stdout[-2000:])
        errors = [line for line in proc.stdout.splitlines() if "Configuration error:" in line]
        assert len(errors) == 1 and str(path) in errors[0] and message in errors[0], (name, errors)
        assert "Traceback" not in proc.stdout and not (out / "report.json").exists()
