"""The one exception type for user mistakes.

The CLI prints a ``UserError`` as a single line and exits non-zero; anything else is a bug and
keeps its traceback.
"""


class UserError(Exception):
    """A problem with what the user gave us (data, options, files), not with the code."""
