"""The one error type for bad configuration or input."""


class ConfigError(ValueError):
    """A user-facing configuration or input error: the message names the bad key/value and what is accepted."""
