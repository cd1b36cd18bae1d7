"""Errors that the CLI reports as one line: ``UsageError`` (bad input, exit code 2) and
``DivergenceError`` (a training run whose loss became NaN or infinite)."""

__all__ = ["UsageError", "DivergenceError"]


class UsageError(ValueError):
    """Bad user input: the message names the field or flag, the bad value and the fix."""


class DivergenceError(RuntimeError):
    """The loss or gradient became NaN/inf; the message names the run (task) and the step."""
