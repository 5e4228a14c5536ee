"""The one error type users see: a short message, no traceback."""


class NPSError(Exception):
    """Bad input or setting; ``str(err)`` is a one-line message fit for a terminal."""
