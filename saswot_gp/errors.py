"""Exceptions with one-line messages meant for users."""


class SaswotError(ValueError):
    """A user-facing error: bad input, bad file, bad option. The message is one line."""
