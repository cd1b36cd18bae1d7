"""Errors that the CLI reports as one line with exit code 2 (bad input, never a traceback)."""

__all__ = ["UsageError"]


class UsageError(ValueError):
    """Bad user input: the message names the field or flag, the bad value and the fix."""
