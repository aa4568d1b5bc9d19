"""The one error type the DR commands raise: its message is the single line the operator sees."""


class DrError(Exception):
    """A failure with a message that says what failed and what to do."""
