"""record_activations: values against manual forwards (CNN, tiny GPT-Neo with padding), hooks and modes restored."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn
from transformers import GPTNeoConfig, GPTNeoForCausalLM
from transformers.utils import logging as hf_logging

from toponets_exp.evaluation.recording import record_activations, text_batches, text_responses

hf_logging.set_verbosity_error()


def tiny_cnn() -> nn.Sequential:
    """Conv -> BN -> ReLU -> Conv -> pool -> Linear, with dropout to make eval mode observable."""
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(3, 4, 3, padding=1), bn=nn.BatchNorm2d(4), relu=nn.ReLU(), drop=nn.Dropout(0.5),
        conv2=nn.Conv2d(4, 6, 3), pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten(), fc=nn.Linear(6, 5),
    ))


def tiny_gpt_neo(vocab: int = 64) -> GPTNeoForCausalLM:
    """2 layers, hidden 32, random init, built from a config (no download)."""
    torch.manual_seed(0)
    cfg = GPTNeoConfig(vocab_size=vocab, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                       attention_types=[[["global", "local"], 1]], window_size=8, max_position_embeddings=64,
                       bos_token_id=0, eos_token_id=0)
    return GPTNeoForCausalLM(cfg)


def image_batches(n_batches: int = 3, size: int = 5) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(images, labels) batches of random 8x8 RGB images."""
    gen = torch.Generator().manual_seed(1)
    return [(torch.randn(size, 3, 8, 8, generator=gen), torch.zeros(size)) for _ in range(n_batches)]


def test_cnn_conv_and_linear_outputs_match_manual_forward():
    net = tiny_cnn()
    net.train()
    batches = image_batches()
    acts = record_activations(net, ["conv2", "fc", "bn"], batches, progress=False)
    x = torch.cat([b[0] for b in batches])
    net.eval()
    with torch.no_grad():
        h1 = net.bn(net.conv1(x))
        conv2 = net.conv2(net.relu(h1))
        fc = net.fc(conv2.mean(dim=(2, 3)))
    assert set(acts) == {"conv2", "fc", "bn"}
    assert acts["conv2"].dtype == np.float32 and acts["conv2"].shape == (15, 6)
    np.testing.assert_allclose(acts["conv2"], conv2.mean(dim=(2, 3)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["bn"], h1.mean(dim=(2, 3)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["fc"], fc.numpy(), rtol=1e-5, atol=1e-6)


def test_flatten_keeps_every_value_of_a_conv_map():
    net = tiny_cnn()
    batches = image_batches()
    acts = record_activations(net, ["conv2", "fc"], batches, reduce="flatten", progress=False)
    x = torch.cat([b[0] for b in batches])
    net.eval()
    with torch.no_grad():
        conv2 = net.conv2(net.relu(net.bn(net.conv1(x))))
    assert acts["conv2"].shape == (15, 6 * 6 * 6)  # C·H·W, channel-major as torch lays it out
    np.testing.assert_allclose(acts["conv2"], conv2.flatten(1).numpy(), rtol=1e-5, atol=1e-6)
    assert acts["fc"].shape == (15, 5)


def test_training_flags_restored_and_hooks_removed():
    net = tiny_cnn()
    net.train()
    net.bn.eval()  # a mixed state must come back exactly
    record_activations(net, ["conv1"], image_batches(1), progress=False)
    assert net.training and net.drop.training and not net.bn.training
    assert all(not m._forward_hooks for m in net.modules())


def test_hooks_removed_when_forward_fails():
    net = tiny_cnn()

    def broken(model, batch):
        model(batch[0])
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        record_activations(net, ["conv1", "fc"], image_batches(1), forward=broken, progress=False)
    assert all(not m._forward_hooks for m in net.modules())
    assert net.training


def test_unknown_layer_lists_close_names():
    with pytest.raises(ValueError, match="conv2"):
        record_activations(tiny_cnn(), ["conv3"], image_batches(1), progress=False)
    with pytest.raises(ValueError, match="reduce"):
        record_activations(tiny_cnn(), ["conv1"], image_batches(1), reduce="max", progress=False)


def test_shared_module_called_twice_is_an_error():
    lin = nn.Linear(4, 4)
    net = nn.Sequential(OrderedDict(a=lin, b=nn.ReLU(), c=lin))
    with pytest.raises(ValueError, match="more than once"):
        record_activations(net, ["a"], [torch.randn(2, 4)], progress=False)


def _hidden_states(model, ids: list[int]) -> list[torch.Tensor]:
    """Per-block outputs (T, hidden) of one unpadded sequence, read from the model's own hidden_states."""
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_hidden_states=True)
    return [h[0] for h in out.hidden_states[1:]]


@pytest.mark.parametrize("side", ["right", "left"])
def test_gpt_neo_mean_and_last_respect_padding(side):
    model = tiny_gpt_neo()
    gen = torch.Generator().manual_seed(3)
    seqs = [torch.randint(1, 64, (n,), generator=gen).tolist() for n in (7, 3, 5, 1)]
    width = max(map(len, seqs))
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        cols = slice(0, len(s)) if side == "right" else slice(width - len(s), width)
        ids[i, cols] = torch.tensor(s)
        mask[i, cols] = 1
    batch = {"input_ids": ids, "attention_mask": mask, "position_ids": (mask.cumsum(1) - 1).clamp_min(0)}
    layers = ["transformer.h.0", "transformer.h.1"]
    mean = record_activations(model, layers, [batch], reduce="mean", progress=False)
    last = record_activations(model, layers, [batch], reduce="last", progress=False)
    for i, s in enumerate(seqs):
        # block 1's output is the last hidden state before ln_f; HF applies ln_f to hidden_states[-1]
        per_block = _hidden_states(model, s)
        np.testing.assert_allclose(mean["transformer.h.0"][i], per_block[0].mean(0).numpy(), atol=1e-5)
        np.testing.assert_allclose(last["transformer.h.0"][i], per_block[0][-1].numpy(), atol=1e-5)
        final = model.transformer.ln_f(torch.from_numpy(last["transformer.h.1"][i]))
        np.testing.assert_allclose(final.detach().numpy(), per_block[1][-1].numpy(), atol=1e-5)


def test_text_responses_match_unpadded_mlp_outputs():
    model = tiny_gpt_neo()
    texts = ["ab", "hello world", "xyz!"]
    encode = lambda s: [b % 63 + 1 for b in s.encode()]  # noqa: E731 - bytes folded into the tiny vocabulary
    respond = text_responses(model, "transformer.h.1.mlp.c_fc", encode, reduce="mean", batch_size=2)
    got = respond(texts)
    assert got.shape == (3, 64)
    for i, text in enumerate(texts):
        seen = {}
        handle = model.transformer.h[1].mlp.c_fc.register_forward_hook(lambda m, a, o: seen.setdefault("o", o))
        with torch.no_grad():
            model(torch.tensor([encode(text)]))
        handle.remove()
        np.testing.assert_allclose(got[i], seen["o"][0].mean(0).numpy(), atol=1e-5)


def test_text_batches_pad_right_with_mask():
    batches = list(text_batches(["abc", "a", "ab"], lambda s: [ord(c) for c in s], batch_size=2, pad_id=7))
    assert [b["input_ids"].shape for b in batches] == [(2, 3), (1, 2)]
    assert batches[0]["input_ids"].tolist() == [[97, 98, 99], [97, 7, 7]]
    assert batches[0]["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    with pytest.raises(ValueError, match="no tokens"):
        list(text_batches([""], lambda s: [], batch_size=1))


def test_rectified_recording_is_the_mean_of_the_relu() -> None:
    """rectify=True records max(x, 0) averaged over positions: the response of a ReLU after the layer."""
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1))
    x = torch.randn(5, 3, 6, 6)
    plain = record_activations(conv, ["0"], [x], progress=False)["0"]
    rectified = record_activations(conv, ["0"], [x], progress=False, rectify=True)["0"]
    with torch.no_grad():
        out = conv(x)
    np.testing.assert_allclose(plain, out.mean(dim=(2, 3)).numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(rectified, out.clamp_min(0).mean(dim=(2, 3)).numpy(), rtol=1e-6, atol=1e-7)
