"""The one error type the DR commands raise: its message is the single line the operator sees."""


class DrError(Exception):
    """A failure with a message that says what failed and what to do. `retryable` is False
    when another attempt cannot succeed (a missing bucket, a refused credential)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable
