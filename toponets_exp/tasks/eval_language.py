"""Language evaluation: sentences vs non-words selectivity, integration windows, ED; loss efficiency; BLiMP."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from toponets_exp.brain import plot_sheet_map
from toponets_exp.brain.activations import evaluating, record_activations, text_batches
from toponets_exp.brain.blimp import blimp_accuracy, load_blimp, sequence_log_prob
from toponets_exp.brain.integration import integration_windows
from toponets_exp.brain.language import embedded_sentences, language_selectivity, make_nonwords
from toponets_exp.errors import ConfigError
from toponets_exp.lit.causal_lm import logits_of
from toponets_exp.tasks.eval_common import efficiency, file_name, response_maps
from toponets_exp.topo import TopoLayer


def encoder(datamodule: L.LightningDataModule) -> Callable[[str], list[int]]:
    """text -> token ids with the data's tokenizer, keeping the last data.block_size tokens (the model's context)."""
    tokenizer = getattr(datamodule, "tokenizer", None)
    if tokenizer is None:
        raise ConfigError(f"eval=language needs a text data module with a tokenizer; {type(datamodule).__name__} "
                          "has none (use data=text_embedded or an HF text corpus)")
    context = int(datamodule.hparams.block_size)
    return lambda text: tokenizer.encode_batch([text])[0][-context:]


def sentences(ev: Mapping[str, Any]) -> list[str]:
    """Sentence stimuli: one per line of eval.sentences, else sentences of the embedded English text."""
    if ev["sentences"]:
        path = Path(ev["sentences"]).expanduser()
        if not path.is_file():
            raise ConfigError(f"eval.sentences={str(path)!r} is not a file with one sentence per line")
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return lines[: ev["n_sentences"]]
    return embedded_sentences(ev["n_sentences"], seed=ev["seed"])


def layer_responses(net: nn.Module, names: Sequence[str], texts: Sequence[str], encode: Callable[[str], list[int]],
                    reduce: str, batch_size: int, device: torch.device,
                    progress: bool = True) -> dict[str, np.ndarray]:
    """Each named layer's response (texts × units), token positions averaged or the last token."""
    batches = text_batches(list(texts), encode, batch_size)
    return record_activations(net, names, batches, reduce, device, forward=lambda m, b: m(b["input_ids"]),
                              progress=progress)


def loss_on(loader: Any, max_batches: int | None, device: torch.device) -> Callable[[nn.Module], float]:
    """A function net -> mean next-token cross-entropy on the first `max_batches` batches of `loader`."""

    def evaluate(net: nn.Module) -> float:
        total, count = 0.0, 0
        net.to(device)
        with evaluating(net):
            for i, (x, y) in enumerate(loader):
                if max_batches is not None and i >= max_batches:
                    break
                logits = logits_of(net(x.to(device)))
                total += F.cross_entropy(logits.flatten(0, 1).float(), y.to(device).flatten(), reduction="sum").item()
                count += y.numel()
        return total / count

    return evaluate


def language_analyses(net: nn.Module, layers: Sequence[TopoLayer], datamodule: L.LightningDataModule,
                      ev: Mapping[str, Any], report: dict, figures: Path, device: torch.device) -> dict[str, Any]:
    """Run every language analysis; fills `report` per layer and returns the model-level results."""
    encode = encoder(datamodule)
    texts = sentences(ev)
    nonwords = make_nonwords(texts, seed=ev["seed"])
    names = [layer.name for layer in layers] + [n for n in ev["layers"] or [] if n not in report]
    sent = layer_responses(net, names, texts, encode, ev["token_reduce"], ev["batch_size"], device)
    non = layer_responses(net, names, nonwords, encode, ev["token_reduce"], ev["batch_size"], device)
    response_maps(layers, sent, ev, report, figures)
    for layer in layers:
        sel = language_selectivity(sent[layer.name], non[layer.name], layer.sheet, ev["fdr_alpha"])
        report[layer.name]["language_selectivity"] = {
            "fraction_sentence_selective": sel.fraction_sentence_selective,
            "fraction_nonword_selective": sel.fraction_nonword_selective, "morans_i": sel.morans_i}
        plot_sheet_map(sel.t, figures / f"language_selectivity_{file_name(layer.name)}.png",
                       f"{layer.name}: sentences vs non-words (Welch t)", cmap="RdBu_r")
    out: dict[str, Any] = {"n_sentences": len(texts), "token_reduce": ev["token_reduce"]}
    out["integration"] = integration(net, layers, texts, encode, ev, figures, device)
    datamodule.setup("validate")
    evaluate = loss_on(datamodule.val_dataloader(), ev["metric_batches"], device)
    base = evaluate(net)
    out["val_loss"], out["val_perplexity"] = base, math.exp(base)
    if ev["efficiency"]:
        out["efficiency"] = efficiency(net, layers, ev, "val loss", evaluate, figures)
    if ev["blimp"]:
        pairs = load_blimp(ev["blimp"])
        start = start_token(datamodule)
        out["blimp"] = blimp_accuracy(pairs, lambda t: sequence_log_prob(net, encode, t, device, start,
                                                                          ev["batch_size"]))
    return out


def start_token(datamodule: L.LightningDataModule) -> int | None:
    """The token prepended when scoring sentences, so their first token is scored too (None: the model has none)."""
    return getattr(getattr(datamodule, "tokenizer", None), "start_id", None)


def integration(net: nn.Module, layers: Sequence[TopoLayer], texts: Sequence[str],
                encode: Callable[[str], list[int]], ev: Mapping[str, Any], figures: Path,
                device: torch.device) -> dict[str, Any]:
    """Word-swap temporal integration windows of one topo layer (eval.integration_layer, default the middle)."""
    name = ev["integration_layer"] or layers[len(layers) // 2].name
    layer = next((l for l in layers if l.name == name), None)
    if layer is None:
        raise ConfigError(f"eval.integration_layer={name!r} is not a topo layer; use one of "
                          f"{', '.join(l.name for l in layers)}")
    result = integration_windows(
        lambda batch: layer_responses(net, [name], batch, encode, "last", ev["batch_size"], device, False)[name],
        texts, ev["integration_distances"], seed=ev["seed"])
    h, w = layer.sheet
    plot_sheet_map(np.where(np.isfinite(result.window), result.window, np.nan).reshape(h, w),
                   figures / f"integration_window_{file_name(name)}.png",
                   f"{name}: integration window (words)")
    best = np.select([result.best_model == "exponential", result.best_model == "power"], [0.0, 1.0], np.nan)
    plot_sheet_map(best.reshape(h, w), figures / f"integration_model_{file_name(name)}.png",
                   f"{name}: better fit (0 exponential, 1 power law)", cmap="coolwarm")
    return {"layer": name, **result.summary(), "window": result.window, "best_model": result.best_model.tolist()}
