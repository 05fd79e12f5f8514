"""The language evaluation of a positions set's layers (TopoLM's units at their sheet cells): ED, response correlation
vs distance, and the sentences vs non-words t map with its FDR fractions and TDANN smoothness at the coordinates."""

from __future__ import annotations

from typing import Any

import numpy as np

from toponets_exp.brain.language import make_nonwords
from toponets_exp.brain.position_plots import plot_position_maps
from toponets_exp.brain.stats import benjamini_hochberg, welch_t_pvalues
from toponets_exp.evaluation.context import EvalContext, Section, file_name, phase, stop_point
from toponets_exp.evaluation.language_analyses import encoder, sentences
from toponets_exp.evaluation.positioned import PositionSet
from toponets_exp.evaluation.positioned_analyses import check_sizes, record_units
from toponets_exp.evaluation.positioned_maps import layer_maps, layer_seeds, t_limit, tdann_smoothness
from toponets_exp.evaluation.recording import text_batches


def positioned_language(ctx: EvalContext, positions: PositionSet) -> tuple[Section, dict[str, Any]]:
    """Every language measure at the set's positions, and one t-map figure per layer."""
    ev, layers = ctx.settings, positions.layers
    encode = encoder(ctx.tokenizer, ctx.model_eval["context"])
    texts = sentences(ev)
    nonwords = make_nonwords(texts, seed=ev.seed)

    def forward(model: Any, batch: Any) -> Any:
        return model(batch["input_ids"])

    check_sizes(ctx, positions, next(text_batches(texts[:1], encode)), ev.token_reduce, forward)
    phase("recording %d positioned layers' units for %d sentences and their non-word versions", len(layers),
          len(texts))
    sent = record_units(ctx, layers, text_batches(texts, encode, ev.batch_size), reduce=ev.token_reduce,
                        forward=forward)
    non = record_units(ctx, layers, text_batches(nonwords, encode, ev.batch_size), reduce=ev.token_reduce,
                       forward=forward)
    seeds = layer_seeds(layers, ev.seed)
    per_layer: Section = {}
    for layer in layers:
        stop_point()
        t, p = welch_t_pvalues(sent[layer.name], non[layer.name])
        rejected, _ = benjamini_hochberg(p, ev.fdr_alpha)
        per_layer[layer.name] = {
            **layer_maps(sent[layer.name], layer, positions, ev, seeds[layer.name]),
            "language_selectivity": {"fraction_sentence_selective": float(np.mean(rejected & (t > 0))),
                                     "fraction_nonword_selective": float(np.mean(rejected & (t < 0))),
                                     **tdann_smoothness(t, layer, ev.positions.selectivity, seeds[layer.name])}}
        plot_position_maps([("sentences - non-words", t)], layer.coordinates,
                           ctx.figures / f"language_selectivity_{file_name(layer.name)}.png",
                           f"{layer.name}: sentences vs non-words (Welch t) at TopoLM's positions",
                           t_limit([t]))
    return per_layer, {"n_sentences": len(texts), "token_reduce": ev.token_reduce,
                       "tokenizer": f"{type(ctx.tokenizer).__name__} ({ctx.tokenizer.vocab_size} tokens)"}
