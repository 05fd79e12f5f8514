"""Language localiser: non-word shape matching, embedded sentences, sentence-vs-non-word maps vs scipy references."""

import re

import numpy as np
import pytest
import torch
from pydoc_data.topics import topics
from scipy import stats as sps
from transformers import GPTNeoConfig, GPTNeoForCausalLM
from transformers.utils import logging as hf_logging

from toponets_exp.brain.language import embedded_sentences, language_selectivity, make_nonwords
from toponets_exp.evaluation.recording import text_responses

hf_logging.set_verbosity_error()

SENTENCES = ["The cat sat on the mat.", "Don't panic, it's only a well-known test!", "I am here."]


@pytest.mark.parametrize("style", ["pronounceable", "random"])
def test_nonwords_keep_the_shape_of_each_sentence(style):
    nonwords = make_nonwords(SENTENCES, seed=3, style=style)
    vocabulary = {w.lower() for s in SENTENCES for w in re.findall(r"[A-Za-z]+", s)}
    for sentence, fake in zip(SENTENCES, nonwords):
        words, fakes = sentence.split(), fake.split()
        assert len(fakes) == len(words)
        for word, nonword in zip(words, fakes):
            assert len(nonword) == len(word)
            for a, b in zip(word, nonword):
                assert a.isalpha() == b.isalpha() and a.isupper() == b.isupper()
                if not a.isalpha():
                    assert a == b  # punctuation and apostrophes stay in place
        fake_words = {w.lower() for w in re.findall(r"[A-Za-z]{2,}", fake)}  # every single letter is in the vocab
        assert not fake_words & vocabulary
    assert nonwords != SENTENCES


def test_pronounceable_nonwords_alternate_consonants_and_vowels():
    sentence = ["Alternating letters make strings that look like possible English words."]
    for fake in make_nonwords(sentence * 5, seed=1):
        for word in re.findall(r"[a-z]+", fake.lower()):
            kinds = [ch in "aeiou" for ch in word]
            assert all(x != y for x, y in zip(kinds, kinds[1:])), word


def test_nonwords_are_deterministic_by_seed():
    assert make_nonwords(SENTENCES, seed=7) == make_nonwords(SENTENCES, seed=7)
    assert make_nonwords(SENTENCES, seed=7) != make_nonwords(SENTENCES, seed=8)
    with pytest.raises(ValueError, match="style"):
        make_nonwords(SENTENCES, style="klingon")


def test_embedded_sentences_are_plain_prose_from_the_help_text():
    sentences = embedded_sentences(120, seed=0, min_words=6, max_words=15)
    assert len(sentences) == len(set(sentences)) == 120
    corpus = " ".join(" ".join(text.split()) for text in topics.values())
    per_topic = [" ".join(text.split()) for text in topics.values()]
    for s in sentences:
        assert 6 <= len(s[:-1].split()) <= 15
        assert s.endswith(".") and s[0].isupper()
        assert not re.search(r"[0-9_()\[\]{}<>=*`\"/:@#]", s)
        assert s in corpus
        assert any(s in text for text in per_topic)  # no sentence runs across two topics
    assert embedded_sentences(120, seed=0, min_words=6, max_words=15) == sentences
    assert embedded_sentences(120, seed=1, min_words=6, max_words=15) != sentences
    with pytest.raises(ValueError, match="n=100000"):
        embedded_sentences(100000)


def _reference_bh(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p by the definition: p_adj(i) = min over ranks j >= rank(i) of p_(j)·m/j."""
    m = p.size
    ranks = np.argsort(np.argsort(p)) + 1
    sorted_p = np.sort(p)
    return np.array([min(1.0, min(sorted_p[j - 1] * m / j for j in range(r, m + 1))) for r in ranks])


def _reference_morans_i(grid: np.ndarray) -> float:
    """Moran's I with rook neighbours by an explicit loop over cells."""
    z = grid - grid.mean()
    h, w = grid.shape
    num, links = 0.0, 0
    for r in range(h):
        for c in range(w):
            for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                if 0 <= r + dr < h and 0 <= c + dc < w:
                    num += z[r, c] * z[r + dr, c + dc]
                    links += 1
    return z.size / links * num / (z**2).sum()


def test_language_selectivity_matches_scipy_and_definitions():
    rng = np.random.default_rng(0)
    sentences, nonwords = rng.normal(size=(40, 64)), rng.normal(size=(30, 64)) * 1.5
    effect = np.zeros((8, 8))
    effect[:4, :4], effect[4:, 4:] = 1.5, -1.5
    sentences = sentences + effect.ravel()
    result = language_selectivity(sentences, nonwords, (8, 8), alpha=0.05)
    t_ref, p_ref = sps.ttest_ind(sentences, nonwords, equal_var=False)
    np.testing.assert_allclose(result.t.ravel(), t_ref, rtol=1e-10)
    np.testing.assert_allclose(result.p.ravel(), p_ref, rtol=1e-8)
    p_adj = _reference_bh(p_ref)
    np.testing.assert_allclose(result.p_adjusted.ravel(), p_adj, rtol=1e-10)
    rejected = p_adj <= 0.05
    np.testing.assert_array_equal(result.significant.ravel(), rejected)
    assert result.fraction_sentence_selective == np.mean(rejected & (t_ref > 0))
    assert result.fraction_nonword_selective == np.mean(rejected & (t_ref < 0))
    assert result.significant[:4, :4].all() and result.significant[4:, 4:].all()
    assert (result.t[:4, :4] > 0).all() and (result.t[4:, 4:] < 0).all()
    assert result.morans_i == pytest.approx(_reference_morans_i(result.t), rel=1e-10)
    assert result.morans_i > 0.5  # two clustered patches
    assert language_selectivity(sentences, nonwords).t.shape == (8, 8)  # default sheet
    with pytest.raises(ValueError, match="sheet"):
        language_selectivity(sentences, nonwords, (4, 4))


def test_localiser_end_to_end_on_a_tiny_gpt_neo():
    torch.manual_seed(0)
    cfg = GPTNeoConfig(vocab_size=256, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                       attention_types=[[["global", "local"], 1]], window_size=8, max_position_embeddings=256)
    model = GPTNeoForCausalLM(cfg)
    sentences = embedded_sentences(24, seed=0, max_words=10)
    respond = text_responses(model, "transformer.h.1.mlp.c_fc", lambda s: list(s.encode()), reduce="mean",
                             batch_size=8)
    result = language_selectivity(respond(sentences), respond(make_nonwords(sentences)), (8, 8))
    assert result.t.shape == result.significant.shape == (8, 8)
    assert np.isfinite(result.t).all() and -1.0 <= result.morans_i <= 1.0
    assert result.fraction_sentence_selective + result.fraction_nonword_selective <= 1.0
