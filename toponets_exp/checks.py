"""One vocabulary for checking config values: each check returns the value or raises one ConfigError line that
names the key, the bad value and what is accepted."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from toponets_exp.errors import ConfigError


def is_int(value: Any) -> bool:
    """An integer that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def integer(key: str, value: Any, low: int | None = None, high: int | None = None, *, optional: bool = False,
            accepted: str | None = None) -> int | None:
    """`value` if it is an integer in [low, high] (or None with `optional`); else '<key>=<value> must be
    <accepted>', by default 'an integer in [low, high]' (or '>= low', '<= high'), with '(or null)' when optional."""
    if value is None and optional:
        return None
    if not is_int(value) or (low is not None and value < low) or (high is not None and value > high):
        bounds = (f" in [{low}, {high}]" if low is not None and high is not None else
                  f" >= {low}" if low is not None else f" <= {high}" if high is not None else "")
        what = accepted or f"an integer{bounds}"
        raise ConfigError(f"{key}={value!r} must be {what}" + (" (or null)" if optional else ""))
    return value


def number(key: str, value: Any, minimum: float | None = None) -> float:
    """A finite number (or a string of one) >= minimum, as a float; else '<key>=<value> is not a number', 'must be
    finite' or 'must be >= minimum'."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"{key}={value!r} is not a number")
    try:
        out = float(value)
    except ValueError:
        raise ConfigError(f"{key}={value!r} is not a number") from None
    if not math.isfinite(out):
        raise ConfigError(f"{key}={value!r} must be finite")
    if minimum is not None and out < minimum:
        raise ConfigError(f"{key}={value!r} must be >= {minimum:g}")
    return out


def boolean(key: str, value: Any) -> bool:
    """`value` if it is true or false; else '<key>=<value> must be true or false'."""
    if not isinstance(value, bool):
        raise ConfigError(f"{key}={value!r} must be true or false")
    return value


def choice(key: str, value: Any, options: Sequence[str]) -> Any:
    """`value` if it is one of `options`; else '<key>=<value> is not supported; use one of ...'."""
    if value not in options:
        raise ConfigError(f"{key}={value!r} is not supported; use one of {', '.join(map(str, options))}")
    return value


def must(key: str, value: Any, ok: bool, what: str) -> Any:
    """`value` if `ok`; else '<key>=<value> must be <what>' (a check no other here expresses)."""
    if not ok:
        raise ConfigError(f"{key}={value!r} must be {what}")
    return value


def items(key: str, value: Any, accepts: Callable[[Any], bool], what: str, nonempty: bool = False) -> list[Any]:
    """`value` if it is a list of items `accepts` admits (not empty with `nonempty`); else '<key>=<value> must be
    <what>'."""
    ok = isinstance(value, list) and (bool(value) or not nonempty) and all(accepts(item) for item in value)
    return must(key, value, ok, what)
