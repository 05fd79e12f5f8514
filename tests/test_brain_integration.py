"""Word-swap integration windows: swap construction, fit recovery on synthetic units, tiny GPT-Neo smoke run."""

import numpy as np
import pytest
import torch
from scipy.optimize import curve_fit
from transformers import GPTNeoConfig, GPTNeoForCausalLM
from transformers.utils import logging as hf_logging

from toponets_exp.brain.integration import exponential, fit_decay, integration_windows, power_law
from toponets_exp.brain.language import embedded_sentences
from toponets_exp.evaluation.recording import text_responses

hf_logging.set_verbosity_error()

CONTEXT = 40
DISTANCES = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24)
TRUE_TAU = (1.5, 3.0, 6.0)
TRUE_ALPHA = (0.8, 1.5, 2.5)


def weights_for(curve) -> np.ndarray:
    """Per-distance weights w_0..w_C with Σ_{j>d} w_j² = curve(d)² for d < C (w_0, the target's own weight, = 1)."""
    d = np.arange(CONTEXT + 1, dtype=float)
    g2 = curve(d) ** 2
    w2 = np.empty(CONTEXT + 1)
    w2[0] = 1.0
    w2[1:CONTEXT] = g2[:CONTEXT - 1] - g2[1:CONTEXT]
    w2[CONTEXT] = g2[CONTEXT - 1]  # the farthest word carries the rest of the tail
    return np.sqrt(w2)


class LinearUnits:
    """Synthetic units: r_u = Σ_j W[u, j] · f(word at distance j from the last word), f a random word feature."""

    def __init__(self, vocabulary: int = 400, seed: int = 0) -> None:
        values = np.random.default_rng(seed).normal(size=vocabulary)
        self.feature = {f"w{i}": value for i, value in enumerate(values)}
        curves = [lambda d, t=t: np.exp(-d / t) for t in TRUE_TAU] + [lambda d, a=a: (1 + d) ** -a for a in TRUE_ALPHA]
        self.weights = np.stack([weights_for(c) for c in curves])  # (units, C + 1)
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(texts)
        feats = np.array([[self.feature[w] for w in reversed(t.split()[-(CONTEXT + 1):])] for t in texts])
        return feats @ self.weights.T


def random_sentences(n: int, length: int, seed: int = 1) -> list[str]:
    """Sentences of random vocabulary words."""
    rng = np.random.default_rng(seed)
    return [" ".join(f"w{i}" for i in rng.integers(0, 400, size=length)) for _ in range(n)]


def test_swaps_keep_target_and_nearest_context_and_take_the_rest_from_another_sentence():
    units = LinearUnits()
    sentences = random_sentences(20, CONTEXT + 5)
    integration_windows(units, sentences, (0, 3), seed=0, context_words=CONTEXT)
    intact, full_swap, keep3 = ([t.split() for t in call] for call in units.calls)
    assert all(len(t) == CONTEXT + 1 for t in intact)
    assert intact == [s.split()[:CONTEXT + 1] for s in sentences]
    donors = []
    for own, swapped0, swapped3 in zip(intact, full_swap, keep3):
        assert swapped0[-1:] == own[-1:] and swapped3[-4:] == own[-4:]
        donor = [i for i, other in enumerate(intact) if other[:-1] == swapped0[:-1]]
        assert len(donor) == 1 and intact[donor[0]] != own
        assert swapped3[:-4] == intact[donor[0]][:-4]
        donors.append(donor[0])
    assert sorted(donors) == list(range(20))  # every sequence donates exactly once


def test_synthetic_units_recover_their_windows_and_decay_law():
    units = LinearUnits()
    result = integration_windows(units, random_sentences(3000, CONTEXT + 1), DISTANCES, seed=0,
                                 context_words=CONTEXT)
    assert result.curves.shape == (6, len(DISTANCES)) and np.all(result.curves[:, 0] == 1.0)
    assert list(result.best_model) == ["exponential"] * 3 + ["power"] * 3
    np.testing.assert_allclose(result.tau[:3], TRUE_TAU, rtol=0.08)
    np.testing.assert_allclose(result.alpha[3:], TRUE_ALPHA, rtol=0.08)
    true_windows = [*TRUE_TAU, *(np.e ** (1 / a) - 1 for a in TRUE_ALPHA)]
    np.testing.assert_allclose(result.window, true_windows, rtol=0.1)
    # the target word carries weight 1 and the context Σw² = 1: Δ(0)² = 2·Var(context part) = Var(r)
    np.testing.assert_allclose(result.context_sensitivity, np.sqrt(0.5), rtol=0.1)
    summary = result.summary()
    assert summary["n_units_fitted"] == 6 and summary["fraction_power_law"] == 0.5


def test_fit_matches_scipy_curve_fit():
    rng = np.random.default_rng(0)
    d = np.array(DISTANCES, dtype=float)
    curves = np.stack([exponential(d, 2.0), power_law(d, 1.2), exponential(d, 5.0) * 0.9 + 0.05]) + \
        rng.normal(0, 0.02, size=(3, len(d)))
    for model, bounds, start in ((exponential, (1e-2, 1e4), 1.0), (power_law, (1e-2, 1e2), 1.0)):
        theta, sse = fit_decay(curves, d, model, bounds)
        for row, th, err in zip(curves, theta, sse):
            (ref,), _ = curve_fit(model, d, row, p0=[start], bounds=bounds)
            assert th == pytest.approx(ref, rel=1e-4)
            assert err == pytest.approx(np.sum((row - model(d, ref)) ** 2), rel=1e-6)


def test_insensitive_units_get_no_window_and_bad_inputs_are_errors():
    flat = lambda texts: np.ones((len(texts), 3))  # noqa: E731
    result = integration_windows(flat, random_sentences(10, 6), (1, 2))
    assert list(result.best_model) == ["none"] * 3 and np.isnan(result.window).all()
    with pytest.raises(ValueError, match="sentences have"):
        integration_windows(flat, random_sentences(10, 3), (1, 2))
    with pytest.raises(ValueError, match="non-negative"):
        integration_windows(flat, random_sentences(10, 6), (-1,))
    with pytest.raises(ValueError, match="n_texts"):
        integration_windows(lambda texts: np.ones(len(texts)), random_sentences(10, 6), (1,))


def test_tiny_gpt_neo_byte_level_window_is_bounded_by_local_attention():
    torch.manual_seed(0)
    # two local-attention layers of window 4: the last byte's layer-1 MLP input sees at most 6 bytes back
    cfg = GPTNeoConfig(vocab_size=256, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                       attention_types=[[["local"], 2]], window_size=4, max_position_embeddings=256)
    model = GPTNeoForCausalLM(cfg)
    with torch.no_grad():
        model.transformer.wpe.weight.zero_()  # swaps shift the target's absolute position; remove that route
    encode = lambda text: list(text.encode("utf-8"))  # noqa: E731 - byte-level tokenizer: bytes are the ids
    respond = text_responses(model, "transformer.h.1.mlp.c_fc", encode, reduce="last", batch_size=64)
    sentences = embedded_sentences(40, seed=0, min_words=8)
    result = integration_windows(respond, sentences, (0, 1, 2, 4), seed=0)
    assert result.curves.shape == (64, 4) and result.n_sequences == 40 and result.context_words == 5
    assert (result.best_model != "none").all() and np.all(result.curves[:, 0] == 1.0)
    # 4 intact words and their 4 spaces are >= 8 bytes, beyond the receptive field: no change at all
    np.testing.assert_allclose(result.change[:, -1], 0.0, atol=1e-6)
    assert np.isfinite(result.window).all() and (result.window > 0).all() and (result.window < 4).all()


def test_windows_past_the_largest_distance_are_flagged_and_censor_the_median(caplog):
    """A unit whose fitted window exceeds what the swap distances measured is an extrapolation: it is flagged, and
    the median counts it as 'beyond', so a median the measurements do not bound is NaN rather than a number. Each
    distance's pass says so in a line (a large model takes minutes)."""
    units = LinearUnits()
    with caplog.at_level("INFO", logger="toponets_exp.brain.integration"):
        result = integration_windows(units, random_sentences(600, CONTEXT + 1), (0, 1, 2), seed=0,
                                     context_words=CONTEXT)
    assert [r.getMessage()[-8:] for r in caplog.records] == ["(1 of 3)", "(2 of 3)", "(3 of 3)"]
    reach = 2
    np.testing.assert_array_equal(result.beyond_measured, result.window > reach)
    assert result.beyond_measured.any() and not result.beyond_measured.all()
    summary = result.summary()
    assert summary["max_distance_measured"] == reach
    assert summary["fraction_beyond_measured"] == pytest.approx(np.mean(result.window > reach))
    censored = np.where(result.window > reach, np.inf, result.window)
    expected = np.median(censored)
    assert (np.isnan(summary["median_window"]) if np.isinf(expected) else summary["median_window"] == expected)
    wide = integration_windows(units, random_sentences(600, CONTEXT + 1), DISTANCES, seed=0, context_words=CONTEXT)
    assert not wide.beyond_measured.any() and wide.summary()["median_window"] == np.median(wide.window)
