"""BLiMP minimal pairs (Warstadt et al. 2020): local JSONL loading, and the accuracy of sentence log-probabilities.

A pair is scored correct when the model gives the grammatical sentence a higher total log-probability than the
ungrammatical one (ties count as wrong). Accuracy is reported per paradigm (UID), as the mean over paradigms (the
BLiMP paper's headline number), per `field` when the files carry it, and over all pairs.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

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
