"""BLiMP minimal pairs (Warstadt et al. 2020): local JSONL loading, causal-LM sentence log-probabilities, accuracy.

A pair is scored correct when the model gives the grammatical sentence a higher total log-probability than the
ungrammatical one (ties count as wrong). Accuracy is reported per paradigm (UID), as the mean over paradigms (the
BLiMP paper's headline number), per `field` when the files carry it, and over all pairs.
"""

from __future__ import annotations

import inspect
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from toponets_exp.brain.activations import evaluating, model_device, text_batches
from toponets_exp.models.outputs import logits_of

REQUIRED_KEYS = ("sentence_good", "sentence_bad", "UID")


def _read_jsonl(path: Path) -> list[dict]:
    """The records of one BLiMP JSONL file, each checked for the required keys."""
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number} is not valid JSON ({err.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{number} is a JSON {type(record).__name__}, not an object")
            missing = [key for key in REQUIRED_KEYS if key not in record]
            if missing:
                raise ValueError(f"{path}:{number} lacks {', '.join(missing)}; BLiMP records need "
                                  f"{', '.join(REQUIRED_KEYS)}")
            records.append(record)
    return records


def load_blimp(path_or_dir: str | Path) -> list[dict]:
    """BLiMP pairs from one .jsonl file or every *.jsonl in a directory (sorted by name), all fields kept."""
    path = Path(path_or_dir).expanduser()
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise ValueError(f"BLiMP directory {str(path)!r} holds no *.jsonl files")
    elif path.is_file():
        files = [path]
    else:
        raise ValueError(f"BLiMP path {str(path)!r} does not exist; give a .jsonl file or a directory of them")
    pairs = [record for file in files for record in _read_jsonl(file)]
    if not pairs:
        raise ValueError(f"BLiMP path {str(path)!r} holds no pairs")
    return pairs


def _grouped_mean(values: np.ndarray, keys: Sequence[str]) -> dict[str, float]:
    """Mean of `values` per key, keys sorted."""
    groups: dict[str, list[float]] = defaultdict(list)
    for key, value in zip(keys, values):
        groups[key].append(float(value))
    return {key: float(np.mean(groups[key])) for key in sorted(groups)}


def blimp_accuracy(pairs: Sequence[dict], log_prob: Callable[[list[str]], np.ndarray]) -> dict:
    """Accuracy of log p(good) > log p(bad): per UID, mean over UIDs, per field (mean of its UIDs), overall.

    `log_prob(sentences) -> (n,)` is called once on all good and once on all bad sentences.
    """
    if not pairs:
        raise ValueError("pairs is empty; load BLiMP pairs with load_blimp(path)")
    good = np.asarray(log_prob([p["sentence_good"] for p in pairs]), dtype=np.float64)
    bad = np.asarray(log_prob([p["sentence_bad"] for p in pairs]), dtype=np.float64)
    if good.shape != (len(pairs),) or bad.shape != (len(pairs),):
        raise ValueError(f"log_prob(sentences) must return one value per sentence ({len(pairs)}), got shapes "
                          f"{good.shape} and {bad.shape}")
    correct = good > bad
    per_uid = _grouped_mean(correct, [str(p["UID"]) for p in pairs])
    result = {"per_uid": per_uid, "mean_over_uids": float(np.mean(list(per_uid.values()))),
              "overall": float(correct.mean()), "n_pairs": len(pairs), "n_uids": len(per_uid)}
    if all("field" in p for p in pairs):
        uid_field = {str(p["UID"]): str(p["field"]) for p in pairs}
        result["per_field"] = _grouped_mean(np.array(list(per_uid.values())), [uid_field[u] for u in per_uid])
    return result


def _accepts_mask(model: nn.Module) -> bool:
    """Whether the model's forward takes an `attention_mask` keyword."""
    params = inspect.signature(model.forward).parameters
    return "attention_mask" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def sequence_log_prob(model: nn.Module, encode: Callable[[str], list[int]], texts: Sequence[str],
                      device: torch.device | str | None = None, bos_id: int | None = None,
                      batch_size: int = 16) -> np.ndarray:
    """Σ_t log p(token_t | tokens_<t) of each text under a causal LM, as float64 (n,).

    With `bos_id`, the id is prepended so every token of the text is scored (as lm-eval-harness does for BLiMP
    with GPT-2's end-of-text token); without it the first token is context only. Texts are right-padded into
    batches, with an attention mask when the model's forward accepts one (padding after a causal sequence
    cannot change its logits either way).
    """
    prefix = [] if bos_id is None else [int(bos_id)]
    device = torch.device(device) if device is not None else model_device(model)
    use_mask = _accepts_mask(model)
    out = []
    with evaluating(model):
        for batch in text_batches(list(texts), lambda text: prefix + list(encode(text)), batch_size):
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            output = model(ids, attention_mask=mask) if use_mask else model(ids)
            logp = F.log_softmax(logits_of(output)[:, :-1].double(), dim=-1)
            scored = torch.where(mask[:, 1:].bool(), logp.gather(-1, ids[:, 1:, None])[..., 0], 0.0)
            out.append(scored.sum(dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)
