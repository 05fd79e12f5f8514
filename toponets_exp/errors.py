"""The error types of bad user input, which the task layer reports in one line with exit status 2."""

from __future__ import annotations

from collections.abc import Sequence

SHOWN = 5  # names listed in one error message


class ConfigError(ValueError):
    """A user-facing configuration or input error: the message names the bad key/value and what is accepted."""


class CheckpointError(ValueError):
    """A checkpoint path that does not exist, cannot be read, or does not fit the model it is loaded into."""


class UnsafePickleError(CheckpointError):
    """A pickle naming a class or function that its reader does not admit; it is refused before anything runs."""


def few(names: Sequence[str]) -> str:
    """A few names for a one-line error message, with the total when there are more."""
    return ", ".join(names[:SHOWN]) + (f", ... ({len(names)} in all)" if len(names) > SHOWN else "")
