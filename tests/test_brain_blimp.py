"""BLiMP: JSONL loading and errors, accuracy on a stub scorer with known answers, log-probs vs a manual forward."""

import json

import numpy as np
import pytest
import torch
from scipy.special import log_softmax
from torch import nn
from transformers import GPTNeoConfig, GPTNeoForCausalLM
from transformers.utils import logging as hf_logging

from toponets_exp.brain.blimp import blimp_accuracy, load_blimp
from toponets_exp.evaluation.blimp_scoring import sequence_log_prob

hf_logging.set_verbosity_error()

PAIRS_A = [
    {"sentence_good": "Cats run.", "sentence_bad": "Cats runs.", "UID": "agreement", "field": "morphology"},
    {"sentence_good": "A dog barks.", "sentence_bad": "A dog bark.", "UID": "agreement", "field": "morphology"},
    {"sentence_good": "They sing.", "sentence_bad": "They sings.", "UID": "agreement", "field": "morphology"},
]
PAIRS_B = [
    {"sentence_good": "Who did you see?", "sentence_bad": "Who did you see him?", "UID": "island", "field": "syntax"},
    {"sentence_good": "What fell?", "sentence_bad": "What fell it?", "UID": "island", "field": "syntax"},
]
# known log-probs: agreement 2 of 3 right, island 0 of 2 right (one tie, which counts as wrong)
LOGP = {"Cats run.": -5.0, "Cats runs.": -6.0, "A dog barks.": -7.0, "A dog bark.": -6.5, "They sing.": -3.0,
        "They sings.": -4.0, "Who did you see?": -9.0, "Who did you see him?": -8.0, "What fell?": -4.0,
        "What fell it?": -4.0}


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "\n")


def test_load_directory_and_single_file(tmp_path):
    write_jsonl(tmp_path / "b_island.jsonl", PAIRS_B)
    write_jsonl(tmp_path / "a_agreement.jsonl", PAIRS_A)
    (tmp_path / "notes.txt").write_text("not a pair file")
    pairs = load_blimp(tmp_path)
    assert pairs == PAIRS_A + PAIRS_B  # files in name order, blank lines skipped, all fields kept
    assert load_blimp(tmp_path / "b_island.jsonl") == PAIRS_B


def test_load_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.jsonl"
    write_jsonl(bad, [PAIRS_A[0], {"sentence_good": "x", "UID": "u"}])
    with pytest.raises(ValueError, match=r"bad.jsonl:2 lacks sentence_bad"):
        load_blimp(bad)
    bad.write_text('{"sentence_good": \n')
    with pytest.raises(ValueError, match="bad.jsonl:1 is not valid JSON"):
        load_blimp(bad)
    with pytest.raises(ValueError, match="does not exist"):
        load_blimp(tmp_path / "missing.jsonl")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no \\*.jsonl"):
        load_blimp(empty)


def test_accuracy_on_known_scores():
    calls = []

    def stub(sentences):
        calls.append(len(sentences))
        return np.array([LOGP[s] for s in sentences])

    result = blimp_accuracy(PAIRS_A + PAIRS_B, stub)
    assert calls == [5, 5]
    assert result["per_uid"] == pytest.approx({"agreement": 2 / 3, "island": 0.0})
    assert result["mean_over_uids"] == pytest.approx(1 / 3)
    assert result["overall"] == pytest.approx(2 / 5)
    assert result["per_field"] == pytest.approx({"morphology": 2 / 3, "syntax": 0.0})
    assert result["n_pairs"] == 5 and result["n_uids"] == 2
    with pytest.raises(ValueError, match="one value per sentence"):
        blimp_accuracy(PAIRS_A, lambda s: np.zeros(2))


def tiny_gpt_neo() -> GPTNeoForCausalLM:
    torch.manual_seed(0)
    cfg = GPTNeoConfig(vocab_size=256, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                       attention_types=[[["global", "local"], 1]], window_size=8, max_position_embeddings=128)
    return GPTNeoForCausalLM(cfg)


def encode(text: str) -> list[int]:
    """Byte-level tokenizer: the UTF-8 bytes are the ids."""
    return list(text.encode("utf-8"))


def manual_log_prob(model, ids: list[int]) -> float:
    """One unpadded sequence: Σ_t log_softmax(logits[t-1])[ids[t]] in NumPy float64."""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double().numpy()
    logp = log_softmax(logits, axis=-1)
    return float(sum(logp[t - 1, ids[t]] for t in range(1, len(ids))))


@pytest.mark.parametrize("bos_id", [None, 10])
def test_sequence_log_prob_matches_manual_forward(bos_id):
    model = tiny_gpt_neo()
    texts = ["Cats run.", "A much longer sentence here.", "Hi", "What fell it?"]
    got = sequence_log_prob(model, encode, texts, bos_id=bos_id, batch_size=3)
    prefix = [] if bos_id is None else [bos_id]
    expected = [manual_log_prob(model, prefix + encode(t)) for t in texts]
    assert got.dtype == np.float64 and got.shape == (4,)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert model.training  # the flag is restored


class Bigram(nn.Module):
    """A plain causal LM returning logits as a tensor (or a (logits, None) tuple); no attention_mask argument."""

    def __init__(self, as_tuple: bool) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.table, self.as_tuple = nn.Embedding(256, 256), as_tuple

    def forward(self, idx):
        logits = self.table(idx)
        return (logits, None) if self.as_tuple else logits


@pytest.mark.parametrize("as_tuple", [False, True])
def test_sequence_log_prob_plain_tensor_models(as_tuple):
    model = Bigram(as_tuple)
    table = log_softmax(model.table.weight.detach().double().numpy(), axis=-1)
    texts = ["abc", "hello"]
    got = sequence_log_prob(model, encode, texts, bos_id=0)
    for value, text in zip(got, texts):
        ids = [0] + encode(text)
        assert value == pytest.approx(sum(table[a, b] for a, b in zip(ids, ids[1:])), rel=1e-6)


def test_sequence_log_prob_rejects_outputs_without_logits():
    class Scores(nn.Module):
        def forward(self, idx):
            return idx.float()  # (batch, tokens): no vocabulary axis

    with pytest.raises(TypeError, match=r"returned shape \(1, 4\)"):
        sequence_log_prob(Scores(), encode, ["abc"], bos_id=0)


def test_end_to_end_accuracy_with_a_tiny_model(tmp_path):
    write_jsonl(tmp_path / "pairs.jsonl", PAIRS_A + PAIRS_B)
    model = tiny_gpt_neo()
    result = blimp_accuracy(load_blimp(tmp_path), lambda s: sequence_log_prob(model, encode, s, bos_id=0))
    assert set(result["per_uid"]) == {"agreement", "island"} and 0.0 <= result["overall"] <= 1.0


def test_byte_level_models_score_the_first_token_of_each_sentence():
    """With the embedded byte corpus the evaluation prepends its line-break separator (the tokenizer's start_id),
    so minimal pairs that differ only in their first byte get different scores (without it, one-byte sentences both
    score 0)."""
    from toponets_exp.data.text import EmbeddedTextDataModule

    start = EmbeddedTextDataModule(block_size=16).tokenizer.start_id
    assert start == ord("\n")
    model = tiny_gpt_neo()
    a, b = sequence_log_prob(model, encode, ["A", "B"], bos_id=start)
    assert a != b and np.isfinite([a, b]).all()
    assert a == pytest.approx(manual_log_prob(model, [start, *encode("A")]))
    assert list(sequence_log_prob(model, encode, ["A", "B"], bos_id=None)) == [0.0, 0.0]
