"""Errors shared by the platform helpers."""


class StackNotReadyError(RuntimeError):
    """A service of the stack is unreachable or not set up; the message names it."""
