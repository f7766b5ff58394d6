"""Exceptions with one-line messages meant for users."""


class SaswotError(ValueError):
    """A user-facing error: bad input, bad file, bad option. The message is one line."""


# What a numerical accident inside a proxy or a zero-cost measure raises (NaN or inf in a decomposition, an empty
# reduction, an overflow, ...): the candidate then scores NaN, or is invalid in evolution, and never crashes a run.
# numpy's LinAlgError is a ValueError. The one definition every scorer uses.
NUMERICAL_ERRORS = (RuntimeError, ValueError, FloatingPointError, ZeroDivisionError, OverflowError, IndexError)
