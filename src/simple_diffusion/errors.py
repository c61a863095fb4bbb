"""The one exception type for user mistakes.

The CLI prints a ``UserError`` as a single line and exits non-zero; anything else is a bug and
keeps its traceback.
"""


class UserError(Exception):
    """A problem with what the user gave us (data, options, files), not with the code."""


class FollowerExit(UserError):
    """A process of a torchrun job other than rank 0 stopping for a reason that rank 0 reports:
    it exits with status 1 without a word, so that the message is printed once."""
