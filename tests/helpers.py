"""Helpers shared by test modules."""

from __future__ import annotations

from simple_diffusion.cli import main


def cli(args: list[str]) -> int:
    """Run the command line in-process; its exit status (0 when it returns)."""
    try:
        main(args)
    except SystemExit as exit_info:
        return exit_info.code or 0
    return 0
