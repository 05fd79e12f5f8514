"""Language evaluation: sentences vs non-words selectivity, integration windows, ED; loss efficiency; BLiMP."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from toponets_exp.brain import plot_sheet_map
from toponets_exp.brain.blimp import blimp_accuracy, load_blimp
from toponets_exp.brain.integration import integration_windows
from toponets_exp.brain.language import embedded_sentences, language_selectivity, make_nonwords
from toponets_exp.data.resumable import whole_split
from toponets_exp.evaluation.blimp_scoring import sequence_log_prob
from toponets_exp.evaluation.context import EvalContext, Section, file_name, on_sheets, phase, stop_point
from toponets_exp.evaluation.efficiency_analyses import efficiency
from toponets_exp.evaluation.maps import map_patches, map_tdann_smoothness, response_maps, unresolved_note
from toponets_exp.evaluation.recording import evaluating, record_activations, text_batches
from toponets_exp.evaluation.settings import EvalSettings
from toponets_exp.lit.causal_lm import logits_of


def encoder(tokenizer: Any, context: int) -> Callable[[str], list[int]]:
    """text -> token ids, keeping the last `context` tokens (the model's context)."""
    return lambda text: tokenizer.encode_batch([text])[0][-int(context):]


def sentences(ev: EvalSettings) -> list[str]:
    """Sentence stimuli: one per line of eval.sentences, else sentences of the embedded English text."""
    if ev.sentences:
        text = Path(ev.sentences).expanduser().read_text(encoding="utf-8")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[: ev.n_sentences]
    return embedded_sentences(ev.n_sentences, seed=ev.seed)


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
                stop_point()
                logits = logits_of(net(x.to(device)))
                total += F.cross_entropy(logits.flatten(0, 1).float(), y.to(device).flatten(), reduction="sum").item()
                count += y.numel()
        return total / count

    return evaluate


def language_analyses(ctx: EvalContext, weights: Section) -> tuple[Section, dict[str, Any]]:
    """Every language analysis: the per-layer section (`weights`, the weight maps, feed the c(d) figure) and the
    model-level results."""
    ev, net, device = ctx.settings, ctx.net, ctx.device
    encode = encoder(ctx.tokenizer, ctx.model_eval["context"])
    texts = sentences(ev)
    nonwords = make_nonwords(texts, seed=ev.seed)
    topo = [layer.name for layer in ctx.layers]
    names = topo + [n for n in ev.layers if n not in topo]
    phase("recording %d layers' responses to %d sentences and their non-word versions", len(names), len(texts))
    sent = on_sheets(ctx.layers, layer_responses(net, names, texts, encode, ev.token_reduce, ev.batch_size,
                                                 device))
    non = on_sheets(ctx.layers, layer_responses(net, names, nonwords, encode, ev.token_reduce, ev.batch_size,
                                                device))
    phase("smoothness, effective dimensionality and language selectivity of %d topo layers", len(ctx.layers))
    per_layer = response_maps(ctx.layers, sent, ev, weights, ctx.figures)
    leading_bins = {}
    for layer in ctx.layers:
        stop_point()
        sel = language_selectivity(sent[layer.name], non[layer.name], layer.sheet, ev.fdr_alpha)
        tdann, bins = map_tdann_smoothness(sel.t, layer.sheet, ev)
        leading_bins[layer.name] = [bins]
        per_layer[layer.name]["language_selectivity"] = {
            "fraction_sentence_selective": sel.fraction_sentence_selective,
            "fraction_nonword_selective": sel.fraction_nonword_selective, "morans_i": sel.morans_i,
            "morans_i_topolm": sel.morans_i_topolm,
            "tdann_smoothness": tdann, "tdann_bins": bins, **map_patches(sel.t, layer.sheet)}
        plot_sheet_map(sel.t, ctx.figures / f"language_selectivity_{file_name(layer.name)}.png",
                       f"{layer.name}: sentences vs non-words (Welch t)", cmap="RdBu_r")
    ctx.note(unresolved_note(ctx.layers, leading_bins, ev))
    out: dict[str, Any] = {"n_sentences": len(texts), "token_reduce": ev.token_reduce,
                           "tokenizer": f"{type(ctx.tokenizer).__name__} ({ctx.tokenizer.vocab_size} tokens)"}
    phase("integration windows")
    out["integration"] = integration(ctx, texts, encode)
    if ctx.data is None:
        ctx.skip("val_loss", "the task's validation split")
        if ev.efficiency:
            ctx.skip("efficiency", "the task's validation split for the loss")
    else:
        ctx.data.setup("validate")
        evaluate = loss_on(whole_split(ctx.data.val_dataloader()), ev.metric_batches, device)
        base = evaluate(net)
        out["val_loss"], out["val_perplexity"] = base, math.exp(base)
        if ev.efficiency:
            vocab = ctx.tokenizer.vocab_size
            out["efficiency"] = efficiency(net, ctx.layers, ev, ctx.model_eval["downsample"], "val loss", evaluate,
                                           ctx.figures, (math.log(vocab), f"uniform over {vocab} tokens, ln {vocab}"))
    if ev.blimp:
        out["blimp"] = blimp(ctx, encode)
    return per_layer, out


def blimp(ctx: EvalContext, encode: Callable[[str], list[int]]) -> dict[str, Any]:
    """BLiMP accuracy: the model prefers the grammatical sentence of each pair (eval.blimp)."""
    pairs = load_blimp(ctx.settings.blimp)
    start = getattr(ctx.tokenizer, "start_id", None)
    return blimp_accuracy(pairs, lambda t: sequence_log_prob(ctx.net, encode, t, ctx.device, start,
                                                             ctx.settings.batch_size))


def integration(ctx: EvalContext, texts: Sequence[str], encode: Callable[[str], list[int]]) -> dict[str, Any]:
    """Word-swap temporal integration windows of one topo layer (eval.integration_layer, default the middle)."""
    ev, layers = ctx.settings, ctx.layers
    name = ev.integration_layer or layers[len(layers) // 2].name  # a topo layer (check_model_settings)
    layer = next(l for l in layers if l.name == name)
    result = integration_windows(
        lambda batch: layer.on_sheet(layer_responses(ctx.net, [name], batch, encode, "last", ev.batch_size,
                                                     ctx.device, False)[name], dim=-1),
        texts, ev.integration_distances, seed=ev.seed)
    h, w = layer.sheet
    reach = int(result.distances.max())
    beyond = result.beyond_measured
    plot_sheet_map(result.window.reshape(h, w), ctx.figures / f"integration_window_{file_name(name)}.png",
                   f"{name}: integration window\n{int(beyond.sum())} of {beyond.size} units beyond the largest "
                   f"distance measured, {reach} (red); grey: no fit", label="window (words)", vmax=reach, over="red")
    best = np.select([result.best_model == "exponential", result.best_model == "power"], [0.0, 1.0], np.nan)
    plot_sheet_map(best.reshape(h, w), ctx.figures / f"integration_model_{file_name(name)}.png",
                   f"{name}: better fit (0 exponential, 1 power law)", cmap="coolwarm")
    return {"layer": name, **result.summary(), "window": np.where(beyond, np.nan, result.window),
            "window_beyond_measured": beyond.tolist(), "window_fitted": result.window,
            "best_model": result.best_model.tolist()}
