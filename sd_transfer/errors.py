"""The one exception type for bad user input."""


class UserError(Exception):
    """Bad input from the user: reported as one line naming the file or key, exit code 2."""
