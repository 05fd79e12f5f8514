"""A search space from YAML (`hydra.sweeper.params`): each key's distribution, and a trial's values as overrides."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from toponets_exp.errors import ConfigError

KINDS = ("float", "int", "categorical")
KEYS = {"float": {"type", "low", "high", "log"}, "int": {"type", "low", "high", "log", "step"},
        "categorical": {"type", "choices"}}


def _bounds(key: str, spec: Mapping[str, Any]) -> tuple[float, float]:
    """(low, high) of a numeric range: finite, low < high, both > 0 on a log scale."""
    low, high = spec.get("low"), spec.get("high")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high))
    if not numbers or not low < high or (spec.get("log", False) and low <= 0):
        raise ConfigError(f"hydra.sweeper.params.{key}: low={low!r}, high={high!r}: accepted: finite low < high "
                          f"(> 0 with log: true)")
    return low, high


def distribution(key: str, spec: Any) -> BaseDistribution:
    """One key's distribution: {type: float|int, low, high, log} or {type: categorical, choices: [...]}; a bare
    list is a categorical."""
    if isinstance(spec, (list, tuple)):
        spec = {"type": "categorical", "choices": list(spec)}
    kind = spec.get("type") if isinstance(spec, Mapping) else None
    if kind not in KINDS:
        raise ConfigError(f"hydra.sweeper.params.{key}={spec!r}: accepted: {{type: float|int, low, high, log}}, "
                          "{type: categorical, choices: [...]} or a list of choices")
    unknown = sorted(set(spec) - KEYS[kind])
    if unknown:
        raise ConfigError(f"hydra.sweeper.params.{key} has unknown key(s) {', '.join(unknown)}; accepted for "
                          f"{kind}: {', '.join(sorted(KEYS[kind]))}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, (list, tuple)) or not choices:
            raise ConfigError(f"hydra.sweeper.params.{key}.choices={choices!r}: accepted: a non-empty list")
        return CategoricalDistribution(tuple(choices))
    low, high = _bounds(key, spec)
    if kind == "int":
        return IntDistribution(int(low), int(high), log=bool(spec.get("log", False)), step=int(spec.get("step", 1)))
    return FloatDistribution(float(low), float(high), log=bool(spec.get("log", False)))


def flat(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys to their specs: `topo.weight: {...}` in YAML, or `topo: {weight: {...}}` as a command-line
    override (+hydra.sweeper.params.topo.weight=...) writes it."""
    out: dict[str, Any] = {}
    for key, spec in params.items():
        if isinstance(spec, Mapping) and "type" not in spec and spec:
            out.update(flat(spec, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = spec
    return out


def search_space(params: Mapping[str, Any]) -> dict[str, BaseDistribution]:
    """Every key's distribution (at least one key)."""
    if not params:
        raise ConfigError("hydra.sweeper.params is empty: name the config keys to search, e.g. "
                          "'+hydra.sweeper.params.topo.weight={type: float, low: 0.1, high: 100, log: true}'")
    return {key: distribution(key, spec) for key, spec in flat(params).items()}


def overrides(values: Mapping[str, Any]) -> list[str]:
    """A trial's values as command-line overrides (key=value; floats in full precision)."""
    return [f"{key}={value!r}" if isinstance(value, float) else f"{key}={value}" for key, value in values.items()]
