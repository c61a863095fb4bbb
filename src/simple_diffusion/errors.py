"""The one exception type for user mistakes, who reports them, and how their advice is said.

The CLI prints a ``UserError`` as a single line and exits non-zero; anything else is a bug and
keeps its traceback. Advice names what the reader sets: ``--columns x,code`` to someone at the
command line, ``columns=['x', 'code']`` to someone calling Python (``advice``).
"""

import contextlib
import contextvars
import json
import os
import shlex
from collections.abc import Iterator, Sequence
from typing import Any


class UserError(Exception):
    """A problem with what the user gave us (data, options, files), not with the code."""


def is_follower() -> bool:
    """Whether this process is a rank other than 0 of a torchrun job. Rank 0 reports for all:
    every rank runs the same steps on the same inputs, so a mistake that stops one stops rank 0
    too, and a rank that fails alone shows on rank 0 as a lost process."""
    return int(os.environ.get("RANK", 0)) != 0 and int(os.environ.get("WORLD_SIZE", 1)) > 1


_COMMAND_LINE = contextvars.ContextVar("command_line", default=False)

ARGUMENTS = ("columns", "condition", "overwrite")
"""Advice keys that are arguments of ``sd.fit`` and options of ``train`` of the same name; every
other key is a setting, ``section.key``."""
FLAGS = {"data.categorical": "--categorical", "data.integer": "--integer", "data.numeric": "--numeric",
         "data.preprocess": "--preprocess", "data.bounds": "--bounds", "data.drop_missing": "--drop-missing",
         "data.keep_constant": "--keep-constant", "data.condition": "--condition",
         "train.inpainting": "--inpainting"}
"""The settings that an option of ``train`` sets; the others are set in a ``--config`` file."""


@contextlib.contextmanager
def command_line(active: bool = True) -> Iterator[None]:
    """Within it, advice names command-line options: the CLI runs every command inside one (and a
    worker process of one, ``active`` as its parent)."""
    token = _COMMAND_LINE.set(active)
    try:
        yield
    finally:
        _COMMAND_LINE.reset(token)


def on_command_line() -> bool:
    return _COMMAND_LINE.get()


def said(command_line: str, python: str) -> str:
    """Of two ways to say a thing (a command, or the Python call doing the same), the reader's."""
    return command_line if on_command_line() else python


def counted(count: int, noun: str) -> str:
    """``"1 row"``, ``"1,024 rows"``: a count with its noun, for messages."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def did_you_mean(name: Any, choices: Sequence[Any]) -> str:
    """`` (did you mean 'yes'?)`` where one of ``choices`` is ``name`` spelt otherwise (another
    case, a typo), else nothing.

    >>> did_you_mean("Yes", ["no", "yes"]), did_you_mean("hieght", ["height", "weight"])
    (" (did you mean 'yes'?)", " (did you mean 'height'?)")
    >>> did_you_mean("x", ["y"])
    ''
    """
    import difflib

    labels = {str(choice): choice for choice in choices}
    same = [label for label in labels if label.casefold() == str(name).casefold()]
    near = same or difflib.get_close_matches(str(name), list(labels), n=1, cutoff=0.75)
    return f" (did you mean {labels[near[0]]!r}?)" if near else ""


def no_such_column(setting: str, name: str, columns: Sequence[str], kind: str | None = None) -> UserError:
    """The refusal of a ``setting`` (``data.bounds``; ``--bounds`` on the command line) naming a
    column that is not among ``columns``, those it can take: absent from the data, or of a
    ``kind`` it cannot take.

    >>> print(no_such_column("data.bounds", "kind", ["mass"], "categorical"))
    data.bounds names column 'kind', which is categorical (it takes mass)
    """
    what = f"which is {kind} (it takes" if kind else "which the data lacks (columns:"
    return UserError(f"{said(FLAGS.get(setting, setting), setting)} names column {name!r}, {what} "
                     f"{', '.join(map(str, columns))}){'' if kind else did_you_mean(name, columns)}")


def advice(choices: dict[str, Any]) -> str:
    """How to make ``choices`` (argument or ``section.key`` -> value; ``True`` for a switch), said
    as the reader makes them. A list of column names is written for the shell as one
    comma-separated cell list (a name holding a comma quoted as a CSV cell, as the options read it).

    >>> print(advice({"columns": ["x", "weight, kg"], "data.drop_missing": True}))
    columns=['x', 'weight, kg'], config={'data': {'drop_missing': True}}
    >>> with command_line():
    ...     print(advice({"columns": ["x", "weight, kg"], "data.drop_missing": True}))
    --columns 'x,"weight, kg"' --drop-missing
    >>> with command_line():
    ...     print(advice({"data.categorical_encoding": "onehot"}))
    a --config file with `[data]` then `categorical_encoding = "onehot"`
    """
    if not on_command_line():
        arguments = [f"{key}={value!r}" for key, value in choices.items() if key in ARGUMENTS]
        config: dict[str, dict[str, Any]] = {}
        for key, value in choices.items():
            if key not in ARGUMENTS:
                section, name = key.split(".")
                config.setdefault(section, {})[name] = value
        return ", ".join(arguments + ([f"config={config!r}"] if config else []))
    options = []
    for key, value in choices.items():
        flag = f"--{key}" if key in ARGUMENTS else FLAGS.get(key)
        if flag is None:
            section, name = key.split(".")
            options.append(f"a --config file with `[{section}]` then `{name} = {json.dumps(value)}`")
        elif value is True:
            options.append(flag)
        else:
            options.append(f"{flag} {_shell_value(value)}")
    return " ".join(options)


def _shell_value(value: str | list[str]) -> str:
    """``value`` quoted for a POSIX shell, on one line: text holding a line break (a header cell
    wrapped in a spreadsheet) in bash's ``$'...'`` form, which spells it ``\\n``."""
    if not isinstance(value, str):
        value = ",".join('"' + name.replace('"', '""') + '"' if any(c in name for c in ',"\n\r') else name
                         for name in map(str, value))
    if value.isprintable():
        return shlex.quote(value)
    named = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    escaped = "".join(named.get(c, c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256
                                else f"\\U{ord(c):08x}") for c in value)
    return f"$'{escaped}'"
