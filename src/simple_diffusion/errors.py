"""The one exception type for user mistakes, and who reports them.

The CLI prints a ``UserError`` as a single line and exits non-zero; anything else is a bug and
keeps its traceback.
"""

import os


class UserError(Exception):
    """A problem with what the user gave us (data, options, files), not with the code."""


def is_follower() -> bool:
    """Whether this process is a rank other than 0 of a torchrun job. Rank 0 reports for all:
    every rank runs the same steps on the same inputs, so a mistake that stops one stops rank 0
    too, and a rank that fails alone shows on rank 0 as a lost process."""
    return int(os.environ.get("RANK", 0)) != 0 and int(os.environ.get("WORLD_SIZE", 1)) > 1
