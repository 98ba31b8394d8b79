"""The exception types for bad user input."""


class UserError(Exception):
    """Bad input from the user: reported as one line naming the file or key, exit code 2."""


class CollectiveError(UserError):
    """A :class:`UserError` that every rank of a run raises at the same point (a non-finite loss
    seen by any of them, ranks that disagree): printed once, by rank 0."""
