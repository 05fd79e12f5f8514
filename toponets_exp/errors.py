"""The error types of bad user input, which the task layer reports in one line with exit status 2."""


class ConfigError(ValueError):
    """A user-facing configuration or input error: the message names the bad key/value and what is accepted."""


class CheckpointError(ValueError):
    """A checkpoint path that does not exist, cannot be read, or does not fit the model it is loaded into."""
