"""Reading tables (``.npy``, ``.csv`` and its kin, ``.parquet``, ``.feather``, ``.json(l)``, ``.xlsx``)
with clear errors, and writing samples back in the same format, atomically.

>>> import numpy as np, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "x.csv")
>>> write_table(path, np.array([[1.0, 2.0], [3.0, 4.0]]), ["a", "b"])
>>> table = read_table(path)
>>> table.columns, table.values.shape
(['a', 'b'], (2, 2))
"""

from __future__ import annotations

import builtins
import bz2
import contextlib
import csv
import gzip
import itertools
import lzma
import os
import re
import secrets
import shlex
import sys
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from io import TextIOWrapper
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from ..errors import UserError, advice, counted, did_you_mean, said
from .columns import (
    NUMBER_GAPS,
    Column,
    SheetRow,
    as_written,
    detect,
    find,
    finish,
    forced_kinds,
    is_number,
    missing_cells,
    position,
    refuse_infinite,
    to_values,
)

if TYPE_CHECKING:  # pandas is imported by the readers alone: writing samples needs none
    import pandas as pd

FORMATS = (".npy", ".csv", ".tsv", ".txt", ".dat", ".parquet", ".feather", ".json", ".jsonl", ".xlsx")
JSON_LINES = (".jsonl", ".ndjson")
"""One JSON object per line (a web API's or a warehouse's export), read and written as ``.jsonl``;
a ``.json`` file is an array of such objects (pandas' ``to_json(orient="records")``)."""
WHITESPACE = (".txt", ".dat")
"""Text tables whose cells are separated by spaces or tabs, as NumPy's ``savetxt`` writes them
(missing cells ``nan``, the column names in a "#" line above the rows)."""
SEPARATED = (".csv", ".tsv", *WHITESPACE)
"""Text formats (a .csv is read with the separator its first line uses, and written with
``csv_separator``'s)."""
COMPRESSIBLE = (*SEPARATED, ".json", *JSON_LINES)
"""Text formats also read and written compressed (``COMPRESSIONS``: ``.csv.gz``, ``.jsonl.gz``)."""
MANY_COLUMNS = 64
READ_WHOLE_BYTES = 1 << 28
"""A Parquet table of more values than this (256 MiB as float64: 1.7 million rows of 20 columns)
is read a row group at a time into one matrix; read whole, pandas and the conversions peak at
several times the values (BENCHMARKS.md, "Scale")."""


@dataclass
class Table:
    """A float64 array of shape (n, d) with a name and a kind per column (``columns.Column``):
    values for numeric and integer columns, category codes for categorical ones, NaN where a
    cell is missing."""

    values: np.ndarray
    columns: list[str]
    source: str
    schema: list[Column] = field(default_factory=list)
    dropped: int = 0
    """Rows left out because a cell was missing (``drop_missing``)."""

    def __post_init__(self) -> None:
        if not self.schema:
            self.schema = [Column(name, "numeric") for name in self.columns]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    A crash at any moment leaves the previous complete file or none, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    # Created as open() creates files (0666 less the umask), so results are as readable as any
    # other file the user writes; O_EXCL refuses to reuse a name that exists.
    os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


STDOUT = "-"
"""The output name that means standard output (CSV), for a pipe or the terminal."""
STDOUT_FILES = ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1")
"""Names of standard output as a file, which a shell user writes for ``-`` as often."""


def output_name(path: str) -> str:
    """``STDOUT`` for a name of standard output as a file, else ``path``: standard output is
    written as a stream, never through a temporary file renamed over it.

    >>> output_name("/dev/stdout"), output_name("samples.csv")
    ('-', 'samples.csv')
    """
    return STDOUT if path in STDOUT_FILES else path


def check_stdout_writers(path: str, processes: int) -> None:
    """Refuse standard output as the output of several processes (their parts need a file)."""
    if path == STDOUT and processes > 1:
        raise UserError("-o - (standard output) takes one process: write to a file with --nproc")


COMPRESSIONS = {".gz": gzip, ".bz2": bz2, ".xz": lzma, ".zip": zipfile}
"""What a .csv or .tsv may be compressed with (``table.csv.gz``), and the module that opens it (a
.zip, holding the table as its one file, is read and not written)."""


def workbook_sheet(path: str) -> tuple[str, str | None]:
    """The file a path names and the Excel sheet it names in it, as Excel's own links do
    (``book.xlsx#Prices``), or None: a path that is itself a file names no sheet.

    >>> workbook_sheet("data/book.xlsx#Prices 2024")
    ('data/book.xlsx', 'Prices 2024')
    >>> workbook_sheet("data/book.xlsx")
    ('data/book.xlsx', None)
    """
    named = re.fullmatch(r"(.*\.xlsx)#(.*)", path, re.IGNORECASE | re.DOTALL)
    if named is None or os.path.isfile(path):
        return path, None
    return named.group(1), named.group(2)


def file_format(path: str) -> str:
    """The file's format by its extension (``.npy``, ``.csv``, ``.parquet``; a compressed
    ``.csv.gz`` is ``.csv``; ``STDOUT`` is CSV), or a clear error. A sheet (``book.xlsx#Prices``)
    is named to be read (``read_frame``); an output is a workbook of one sheet."""
    if path == STDOUT:
        return ".csv"
    workbook, sheet = workbook_sheet(path)
    if sheet is not None:
        raise UserError(f"{path}: samples, filled rows and scores are written as a workbook of one sheet; "
                        f"name the file alone ({workbook})")
    suffix = Path(path).suffix.lower()
    if suffix in COMPRESSIONS and Path(path).with_suffix("").suffix.lower() in COMPRESSIBLE:
        suffix = Path(path).with_suffix("").suffix.lower()
        return ".jsonl" if suffix in JSON_LINES else suffix
    if suffix in JSON_LINES:
        return ".jsonl"
    if suffix == ".arrow":  # the Arrow IPC file that Feather (version 2) is
        return ".feather"
    if suffix not in FORMATS:
        raise UserError(f"{path}: unsupported file type {suffix or '(none)'}; use {', '.join(FORMATS)} "
                        f"(text tables also compressed: {', '.join('.csv' + c for c in COMPRESSIONS)}, "
                        ".jsonl.gz, ...)")
    return suffix


def full_suffix(path: str) -> str:
    """The extension that says a file's format: ``.csv.gz`` for a compressed CSV, else its last."""
    suffix = Path(path).suffix
    return Path(path).with_suffix("").suffix + suffix if _compression(path) else suffix


def _compression(path: str) -> Any:
    """The module that opens a compressed text table (``COMPRESSIONS``), else None."""
    suffix = Path(path).suffix.lower()
    return COMPRESSIONS[suffix] if suffix in COMPRESSIONS and file_format(path) in COMPRESSIBLE else None


@contextlib.contextmanager
def _open_binary(path: str | os.PathLike, mode: str, compression: Any) -> Iterator[IO[bytes]]:
    """A file's bytes, through its compression's module (``_compression``): ``mode`` "r" or "w"."""
    with contextlib.ExitStack() as stack:
        if compression is zipfile:  # the table is the archive's one file
            archive = stack.enter_context(zipfile.ZipFile(path))
            yield stack.enter_context(archive.open(archive.namelist()[0]))
        elif compression is gzip and mode == "w":  # no name or time in the header: same rows, same bytes
            raw = stack.enter_context(open(path, "wb"))
            yield stack.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0))
        else:
            yield stack.enter_context((compression or builtins).open(path, mode + "b"))


@contextlib.contextmanager
def _open_text(path: str | os.PathLike, mode: str, compression: Any, **options: Any) -> Iterator[IO[str]]:
    with _open_binary(path, mode, compression) as binary, TextIOWrapper(binary, **options) as text:
        yield text


def read_table(
    path: str,
    columns: list[str] | None = None,
    header: bool | None = None,
    kinds: dict[str, list[str]] | None = None,
    drop_missing: bool = False,
) -> Table:
    """Read a table, keep ``columns`` (names, or indices for ``.npy``), find each column's kind
    (``kinds`` forces some: ``{"categorical": [...], "integer": [...], "numeric": [...]}``) and
    validate. Missing cells stay NaN unless ``drop_missing`` drops their rows.

    ``header=None`` detects a CSV header: a first row with any non-numeric cell is one.
    """
    parts = parquet_parts(path)
    if parts or (path.lower().endswith(".parquet") and os.path.isfile(path)):
        table = _read_parquet_in_row_groups(parts or [path], path, columns, kinds, drop_missing)
        if table is not None:
            return table
    frame = read_frame(path, header)
    if columns:
        frame = select_columns(frame, columns, path)
    return from_frame(frame, path, kinds, drop_missing)


def _read_parquet_in_row_groups(files: list[str], path: str, columns: list[str] | None,
                                kinds: dict[str, list[str]] | None, drop_missing: bool) -> Table | None:
    """A large Parquet table (the ``files`` of ``path``: one, or a folder's parts) read a row
    group at a time: once to find the columns' kinds and labels (merged over the groups), once
    to fill one preallocated matrix; None for a table of at most ``READ_WHOLE_BYTES`` of values
    or of one row group (read whole). The same table as a whole read (labels of a pandas
    ``category`` column may come in another order)."""
    import pyarrow.parquet as pq

    sources = []
    for file in files:
        try:
            sources.append(pq.ParquetFile(file))
        except Exception as exc:  # pyarrow raises many types for a corrupt file
            raise UserError(f"{file}: not a readable Parquet file ({type(exc).__name__})") from None
    rows = sum(source.metadata.num_rows for source in sources)
    if (sum(source.num_row_groups for source in sources) < 2
            or rows * sources[0].metadata.num_columns * 8 <= READ_WHOLE_BYTES):
        return None

    def groups(names: list[str] | None = None) -> Iterator[pd.DataFrame]:
        for source in sources:
            for group in range(source.num_row_groups):
                frame = source.read_row_group(group).to_pandas()
                frame.columns = [str(c) for c in frame.columns]
                yield select_columns(frame, columns, path) if columns else frame

    names = list(next(groups()).columns)
    kinds = kinds or {}
    forced = forced_kinds(names, kinds.get("categorical", ()), kinds.get("integer", ()),
                          kinds.get("numeric", ()))
    findings = None
    for frame in groups():
        found = [find(frame[name], name, forced.get(name)) for name in names]
        findings = found if findings is None else [a.merge(b) for a, b in zip(findings, found)]
    schema = finish(findings)
    values, start = np.empty((rows, len(schema))), 0
    for frame in groups():
        values[start : start + len(frame)] = to_values(frame, schema, path)
        start += len(frame)
    return _validate(values, schema, path, None, drop_missing)


def read_frame(path: str, header: bool | None = None) -> pd.DataFrame:
    """The cells of a table file as a DataFrame, untyped (a CSV's cells are text; its
    ``attrs["first_row"]`` is the line of its first row, for messages). An Excel workbook's
    first sheet, or the one the path names (``book.xlsx#Prices``, ``workbook_sheet``)."""
    parts = parquet_parts(path)
    if parts:
        return _read_parquet(parts, path)
    file, sheet = workbook_sheet(path)
    suffix = file_format(file)
    if not os.path.exists(file):
        raise UserError(f"data file not found: {file}")
    if suffix == ".npy":
        return _read_npy(path)
    if suffix in SEPARATED:
        return _read_csv(path, header)
    if suffix == ".xlsx":
        return _read_excel(file, header, sheet)
    if suffix in (".json", ".jsonl"):
        return _read_json(path, lines=suffix == ".jsonl")
    return _read_parquet([path], path)


def from_frame(
    frame: pd.DataFrame,
    source: str = "DataFrame",
    kinds: dict[str, list[str]] | None = None,
    drop_missing: bool = False,
) -> Table:
    """A DataFrame as a validated ``Table``: kinds from its dtypes (text, booleans and pandas
    categories are categorical; whole-number dtypes integer) unless ``kinds`` says otherwise."""
    if frame.shape[1] == 0:
        raise UserError(f"{source}: no columns of data")
    if frame.columns.nlevels > 1:  # a pivot's or an aggregation's columns, ("price", "mean")
        raise UserError(f"{source}: its columns have {frame.columns.nlevels} levels of names (such as "
                        f"{frame.columns[0]!r}): give each column one name first, e.g. "
                        "df.columns = ['_'.join(map(str, c)) for c in df.columns]")
    frame = frame.rename(columns=str)
    _refuse_repeated(list(frame.columns), source)
    kinds = kinds or {}
    parsed: dict[str, np.ndarray] = {}
    schema = detect(frame, kinds.get("categorical", ()), kinds.get("integer", ()),
                    kinds.get("numeric", ()), first_row=frame.attrs.get("first_row"), parsed=parsed)
    units = frame.attrs.get("units", {})
    schema = [replace(c, unit=units.get(c.name, "")) for c in schema]
    values = to_values(frame, schema, source, parsed)
    return _validate(values, schema, source, frame.attrs.get("first_row"), drop_missing)


def _refuse_repeated(names: list[str], source: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise UserError(f"{source}: the column name {name!r} appears twice (each column needs its own "
                            "name)")
        seen.add(name)


def _read_npy(path: str) -> pd.DataFrame:
    import pandas as pd
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise UserError(f"{path}: not a plain numeric .npy array ({exc})") from None
    except (OSError, EOFError) as exc:
        raise UserError(f"{path}: cannot read as .npy ({exc})") from None
    if array.dtype.names:  # structured arrays carry their own column names
        return pd.DataFrame({name: array[name] for name in array.dtype.names})
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise UserError(f"{path}: expected shape (n,) or (n, d), got {array.shape}")
    _check_real(array.dtype, path)
    return pd.DataFrame(array, columns=[str(i) for i in range(array.shape[1])])


OTHER_DELIMITERS = ("\t", ";", "|")
"""Separators a CSV may use instead of commas: taken when its first line has one and no comma."""


PREAMBLE_LINES = 20
"""How far down a file its first row of cells is looked for, past comments and titles."""


def _preamble(path: str) -> tuple[int, list[str], list[str], str]:
    """How many lines open the file before its first row, its lines from that row on (as far as
    it was read), the titles among them, and the comment line right above it (where ``savetxt``
    writes the column names).
    Skipped: comment lines starting with "#" (as instruments and NumPy's ``savetxt`` write them),
    blank lines, and lines of one cell above the first line of several (a spreadsheet export's
    title: "Heights of 2024"); a table of one column has none of those."""
    lines: list[str] = []
    try:
        with _open_text(path, "r", _compression(path), encoding="utf-8", errors="replace") as file:
            for line in itertools.islice(file, PREAMBLE_LINES):
                lines.append(line)
    except (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError):  # pandas names what is wrong
        return 0, [], [], ""
    content = [k for k, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    if not content:
        return len(lines), [], [], ""
    several = next((k for k in content if _cells(lines[k]) > 1), None)
    first = content[0] if several is None else several
    if any(is_number(lines[k].strip()) for k in content if k < first):  # a table's first row
        first = content[0]
    titles = [lines[k].strip() for k in content if k < first]
    comment = next((line for line in reversed(lines[:first]) if line.strip()), "")
    rows = [lines[k] for k in content if k >= first]
    return first, rows, titles, comment.strip() if comment.lstrip().startswith("#") else ""


def _cells(line: str) -> int:
    """The most cells a line splits into by any separator a CSV may use (quotes respected)."""
    return max(len(next(csv.reader([line], delimiter=d), [])) for d in (",", *OTHER_DELIMITERS))


def _spaced(rows: list[str]) -> bool:
    """Whether the rows are numbers between spaces (under a header of as many names): NumPy's
    ``savetxt`` or a Fortran program's output, saved as .csv."""
    cells = [row.split() for row in rows]
    return (len(cells) > 1 and len(cells[0]) > 1 and all(len(row) == len(cells[0]) for row in cells)
            and all(is_number(cell) for row in cells[1:] for cell in row))


def _delimiter(first: str) -> str:
    """The separator of a file whose first row is ``first`` (a comma unless it has none)."""
    if "," in first:
        return ","
    return next((d for d in OTHER_DELIMITERS if d in first), ",")


_RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


LEGACY_ENCODING = "cp1252"
"""How a CSV that is not UTF-8 is read: Windows' Western European code page, what Excel and older
tools export (Latin-1 with printable characters where Latin-1 has control codes)."""


def _read_csv(path: str, header: bool | None) -> pd.DataFrame:
    import pandas as pd

    skipped, rows, titles, comment = _preamble(path)
    first = rows[0] if rows else ""
    # A .txt of cells between spaces (savetxt's), unless its first row is split by another
    # separator: many programs write CSV under that name; and a .csv of numbers between spaces.
    whitespace = _cells(first) == 1 and (file_format(path) in WHITESPACE or _spaced(rows))
    if titles:
        warnings.warn(f"{path}: skipped {counted(len(titles), 'line')} of one cell above the header (a "
                      f"title?): {titles[0]!r}", stacklevel=3)

    def read(encoding: str) -> pd.DataFrame:
        return pd.read_csv(path, header=None, dtype=str, skip_blank_lines=True, keep_default_na=False,
                           sep=r"\s+" if whitespace else "\t" if file_format(path) == ".tsv"
                           else _delimiter(first),
                           encoding=encoding, skiprows=skipped)

    try:
        try:
            raw = read("utf-8")
        except UnicodeDecodeError:
            raw = read(LEGACY_ENCODING)
            warnings.warn(f"{path} is not UTF-8: read as Windows-1252 (Latin-1); files written "
                          "from it are UTF-8", stacklevel=3)
    except pd.errors.EmptyDataError:
        raise UserError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        if ragged := _RAGGED.search(message):
            expected, line, saw = map(int, ragged.groups())
            raise UserError(f"{path}: line {line} has {saw} cells where the lines above have {expected} (a "
                            "stray separator, a cell with one that is not quoted, or a title above the "
                            "header?)") from None
        raise UserError(f"{path}: not a readable CSV ({message})") from None
    padded = (raw.isna() | (raw == "")).to_numpy() if whitespace else None
    if padded is not None and padded.any():  # a short row, which pandas pads with empty cells
        row = int(np.flatnonzero(padded.any(axis=1))[0])
        raise UserError(f"{path}: line {row + skipped + 1} has {counted(int((~padded[row]).sum()), 'cell')} "
                        f"where the others have {raw.shape[1]} (a missing cell in a space-separated file is "
                        "written nan)")
    named = comment.lstrip("#").split()
    if (header is None and whitespace and len(named) == raw.shape[1]  # savetxt's header="a b c"
            and all(is_number(cell) for cell in raw.iloc[0])):
        _refuse_repeated(named, path)
        raw.columns = named
        raw.attrs["first_row"] = 1 + skipped
        return raw
    return _headed(raw, header, path, skipped)


def _headed(raw: pd.DataFrame, header: bool | None, path: str, skipped: int) -> pd.DataFrame:
    """The cells of a text file or sheet below its header (detected where ``header`` is None: a
    first row with a cell that is not a number), named by it or numbered, with the line of their
    first row in ``attrs["first_row"]`` (``skipped`` lines above the table counted)."""
    import pandas as pd

    if header is None:
        header = not all(is_number(str(cell)) for cell in raw.iloc[0] if not pd.isna(cell))
    if header:
        unnamed = [pd.isna(c) or not str(c).strip() for c in raw.iloc[0]]
        names = [f"column {i}" if blank else str(c).strip()
                 for i, (c, blank) in enumerate(zip(raw.iloc[0], unnamed))]
        if all(len(name) > 1 and name[0] == name[-1] == "'" for name, blank in zip(names, unnamed)
               if not blank):  # quoted as some programs quote text: 'age' 'income'
            names = [name[1:-1] if not blank else name for name, blank in zip(names, unnamed)]
        _refuse_repeated(names, path)
        frame, first_row = raw.iloc[1:].reset_index(drop=True), 2
    else:
        unnamed = [False] * raw.shape[1]
        names, frame, first_row = [str(i) for i in range(raw.shape[1])], raw, 1
    frame.columns = names
    # A spreadsheet's export often ends its lines in separators: columns of no name and no value.
    empty = [name for name, blank in zip(names, unnamed) if blank and missing_cells(frame[name]).all()]
    if empty and len(empty) < len(names):
        warnings.warn(f"{path}: skipped {counted(len(empty), 'column')} with neither a name nor a value "
                      "(separators at the ends of the lines?)", stacklevel=4)
        frame = frame.drop(columns=empty)
    units = _units(frame) if header else {}
    if units:
        shown = ", ".join(f"{name}: {unit}" for name, unit in units.items())
        warnings.warn(f"{path}: the row under the header ({shown}) is read as the columns' units, not as "
                      "data", stacklevel=4)
        frame, first_row = frame.iloc[1:].reset_index(drop=True), first_row + 1
        frame.attrs["units"] = units
    frame.attrs["first_row"] = first_row + skipped
    return frame


UNITS_LOOKED_AT = 1000
"""The rows under a possible units row that say which columns hold numbers."""


def _units(frame: pd.DataFrame) -> dict[str, str]:
    """The units row of a table whose header has one under it (``mass,height`` then ``kg,cm``,
    as instruments and scientific tables write them), as ``{"mass": "kg", "height": "cm"}``,
    or none: a first row with no number in any column that holds nothing but numbers below it,
    and a word in one at least (a row of empty cells is a row with gaps). The first such column
    whose first cell is a number ends the search: most tables cost one column."""
    def present(cells: pd.Series) -> pd.Series:  # the cells of a column of numbers that are not gaps
        text = cells.astype(str).str.strip()
        return text[~missing_cells(cells) & ~text.str.lower().isin(NUMBER_GAPS)]

    words: dict[str, str] = {}
    if len(frame) < 2:
        return words
    for name in frame.columns:
        below = present(frame[name].iloc[1 : 1 + UNITS_LOOKED_AT])
        if not len(below) or not all(is_number(cell) for cell in below):
            continue  # not a column of numbers
        first = present(frame[name].iloc[:1])
        if len(first) and is_number(first.iloc[0]):
            return {}
        if len(first):
            words[name] = first.iloc[0]
    return words


EXCEL_ROWS = 1_048_576
"""The rows an Excel sheet holds, its header row among them."""


def _read_excel(workbook: str, header: bool | None, sheet: str | None = None) -> pd.DataFrame:
    """A sheet of an Excel workbook (the first unless named), its cells typed as Excel typed them
    (numbers, dates, booleans, text; whole numbers with gaps as pandas' nullable integers); a
    column mixing numbers with a stray word is read as a CSV's text is, so that the word is named
    by its row."""
    import pandas as pd

    path = workbook if sheet is None else f"{workbook}#{sheet}"
    try:
        with pd.ExcelFile(workbook, engine="openpyxl") as book:
            sheets = book.sheet_names
            chosen = sheets[0] if sheet is None else sheet
            raw = book.parse(chosen, header=None) if chosen in sheets else None
    except Exception as exc:  # openpyxl raises many types for a file that is not a workbook
        raise UserError(f"{workbook}: not a readable Excel workbook ({type(exc).__name__})") from None
    if raw is None:
        raise UserError(f"{workbook} has no sheet {sheet!r}; its sheets are {', '.join(map(repr, sheets))}"
                        + did_you_mean(sheet, sheets))
    if sheet is None and len(sheets) > 1:
        others = ", ".join(map(repr, sheets[1:4])) + (", ..." if len(sheets) > 4 else "")
        named = said(shlex.quote(f"{workbook}#{sheets[1]}"), repr(f"{workbook}#{sheets[1]}"))
        warnings.warn(f"{workbook} has {len(sheets)} sheets: read the first, {sheets[0]!r} (not {others}; "
                      f"name another after a #, as in {named})", stacklevel=3)
    if raw.empty:
        raise UserError(f"{path}: the {'first ' if sheet is None else ''}sheet is empty")
    # Rows of one cell above the first of several (a title, a blank row), as in a CSV's preamble.
    cells = raw.notna().sum(axis=1).to_numpy()
    several = np.flatnonzero(cells > 1)
    skipped = int(several[0]) if len(several) else 0
    titles = [str(value) for value in raw.iloc[:skipped].stack()]
    if titles:
        warnings.warn(f"{path}: skipped {counted(len(titles), 'row')} of one cell above the "
                      f"header (a title?): {titles[0]!r}", stacklevel=3)
    raw = raw.iloc[skipped:].reset_index(drop=True)
    frame = _headed(raw, header, path, skipped)
    first_row = frame.attrs["first_row"]
    frame = frame.infer_objects().convert_dtypes(convert_string=False, convert_floating=False)
    frame.attrs["first_row"] = SheetRow(first_row)  # messages name a sheet's rows, not lines
    return frame


def parquet_parts(path: str) -> list[str] | None:
    """The Parquet files of a folder, in order of their names (``sample -o parts/``'s, Spark's or
    Dask's ``part-*.parquet``; files starting with ``_`` or ``.``, as their ``_SUCCESS``, are
    skipped), or None when ``path`` is not a folder. A folder without any is refused."""
    if not os.path.isdir(path):
        return None
    parts = sorted(str(Path(path) / name) for name in os.listdir(path)
                   if name.lower().endswith(".parquet") and not name.startswith(("_", "."))
                   and os.path.isfile(Path(path) / name))
    if not parts:
        raise UserError(f"{path} is a folder without Parquet parts (*.parquet): name a data file, or a "
                        "folder of parts as `sample -o parts/` writes them")
    return parts


def _read_parquet(files: list[str], path: str) -> pd.DataFrame:
    """The table of Parquet ``files`` (one, or the parts of the folder ``path``), one after another;
    or of one Feather (Arrow IPC) file."""
    import pandas as pd

    feather = file_format(files[0]) == ".feather"  # a folder's parts are Parquet
    try:
        frame = pd.concat([pd.read_feather(file) if feather else pd.read_parquet(file) for file in files],
                          ignore_index=True)
    except Exception as exc:  # pyarrow raises many types for a corrupt file
        kind = "Feather (Arrow)" if feather else "Parquet"
        raise UserError(f"{path}: not a readable {kind} file ({type(exc).__name__})") from None
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _read_json(path: str, lines: bool) -> pd.DataFrame:
    """A JSON table's objects as rows, each key a column (a key an object lacks, or null, is a
    missing cell): JSON Lines (``lines``), or a .json file's array of them, or any other table
    pandas writes to JSON (a .json of JSON Lines too, as some tools name them); numbers to
    their last bit, text as written (``detect`` finds dates in it)."""
    import pandas as pd

    def not_a_table() -> UserError:
        if lines:
            return UserError(f"{path}: not JSON Lines{_first_bad_json_line(path)}: each line must be one "
                             "JSON object, as {\"a\": 1.5, \"kind\": \"x\"}")
        return UserError(f"{path}: not a JSON table: an array of objects, as [{{\"a\": 1.5, \"kind\": "
                         "\"x\"}, ...], or one object per line (.jsonl)")

    with _open_text(path, "r", _compression(path), encoding="utf-8-sig", errors="replace") as text:
        start = text.read(1 << 16).lstrip()[:1]
    if start not in (("{", "") if lines else ("{", "[")):  # a JSON array as lines, or not JSON at all
        raise not_a_table()
    frame = None
    # utf-8-sig: a byte-order mark, as Windows tools write one, is not a cell.
    for as_lines in (lines,) if lines or start == "[" else (False, True):
        try:
            frame = pd.read_json(path, lines=as_lines, dtype=False, convert_dates=False, precise_float=True,
                                 encoding="utf-8-sig")
            break
        except ValueError:
            continue
    if frame is None:
        raise not_a_table()
    nested = next((str(name) for name in frame.columns if frame[name].map(
        lambda cell: isinstance(cell, (dict, list))).any()), None)
    if nested is not None:
        raise UserError(f"{path}: column {nested!r} holds nested JSON (objects or lists); a table's "
                        "cells are numbers, text, true/false or null: flatten it first "
                        "(pandas.json_normalize)")
    frame.columns = [str(c) for c in frame.columns]
    # Text is typed as a CSV's is (many web APIs write every number as a string, "1.5"); a cell
    # is named by its object, counted from 1.
    frame.attrs["first_row"] = SheetRow(1)
    return frame


def _first_bad_json_line(path: str) -> str:
    """`` (line N)`` for the first line of ``path`` that is not a JSON object, else nothing."""
    import json

    with _open_text(path, "r", _compression(path), encoding="utf-8-sig", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            try:
                parsed = json.loads(line) if line.strip() else {}
            except ValueError:
                return f" (line {number})"
            if not isinstance(parsed, dict):
                return f" (line {number})"
    return ""


def _check_real(dtype: np.dtype, source: str) -> None:
    """Refuse anything but real numbers: a complex value would lose its imaginary part."""
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)
            or np.issubdtype(dtype, np.bool_)):
        raise UserError(f"{source}: values of type {dtype} are not real numbers")


def select_columns(frame: pd.DataFrame, columns: Sequence[str], path: str) -> pd.DataFrame:
    """``frame``'s ``columns`` (names, or positions where no column has that name), in that order;
    a name it lacks is named, with the ones it has."""
    picked = []
    for name in columns:
        name = name.strip()
        if name in frame.columns:
            picked.append(name)
        elif name.lstrip("-").isdigit() and -frame.shape[1] <= int(name) < frame.shape[1]:
            picked.append(frame.columns[int(name)])
        else:
            raise UserError(f"{path}: no column {name!r}{did_you_mean(name, list(frame.columns))}; "
                            f"columns are {', '.join(map(repr, frame.columns))}")
    selected = frame[picked]
    selected.attrs = frame.attrs
    return selected


TOTALS_LEAST_ROWS, TOTALS_TOLERANCE = 5, 1e-3
"""A table of this many rows or more whose last row holds the sum of the rows above it, within
this share, in every number column where it has a value, ends in a totals row."""


def _warn_of_a_totals_row(values: np.ndarray, schema: list[Column], source: str,
                          first_row: int | None) -> None:
    """Warns where the last row is a spreadsheet's totals row: learnt as data, it is a row about
    as many times the others as there are rows, which stretches every column's scale. A sum of
    one number is not looked for (a flag set once above, and in the last row)."""
    if len(values) < TOTALS_LEAST_ROWS:
        return
    summed = []
    for j, column in enumerate(schema):  # a column at a time, and no further than the first that differs
        last, above = values[-1, j], values[:-1, j]
        if column.kind == "categorical" or column.time_unit or np.isnan(last):
            continue
        total = np.nansum(above)
        if abs(last - total) > TOTALS_TOLERANCE * abs(total):
            return
        if np.count_nonzero(above[~np.isnan(above)]) >= 2:
            summed.append(repr(column.name))
    if summed:
        warnings.warn(f"{source}: {position(len(values) - 1, first_row)} holds the sum of the rows above it "
                      f"in {', '.join(summed)} (a totals row?), which is learnt as data: leave it out of the "
                      "table", stacklevel=3)


def _validate(values: np.ndarray, schema: list[Column], source: str, first_row: int | None,
              drop_missing: bool) -> Table:
    refuse_infinite(values, [c.name for c in schema], source, first_row)
    _warn_of_a_totals_row(values, schema, source, first_row)
    missing = np.isnan(values)
    empty = [c.name for c, all_missing in zip(schema, missing.all(0)) if all_missing]
    if empty and len(values):
        kept = [c.name for c, all_missing in zip(schema, missing.all(0)) if not all_missing]
        if not kept:
            raise UserError(f"{source}: every cell of its {counted(len(values), 'row')} is empty: "
                            "there is nothing to learn")
        raise UserError(f"{source}: column {empty[0]!r} has no values; leave it out with "
                        f"{advice({'columns': kept})}")
    dropped = 0
    if drop_missing:
        complete = ~missing.any(1)
        dropped = int((~complete).sum())
        values = values[complete]
        # The rows left have no gaps, so the model learns none (nor a missing indicator that
        # would always say present, and would leave the model without a density).
        schema = [replace(c, nullable=False) for c in schema]
    if len(values) < 2:
        raise UserError(f"{source}: need at least 2 rows of data, found {len(values)}"
                        + (f" after dropping {dropped} with missing cells" if dropped else ""))
    if values.shape[1] > MANY_COLUMNS:
        warnings.warn(
            f"{source}: {values.shape[1]} columns; beyond {MANY_COLUMNS} a small MLP fits poorly",
            stacklevel=2,
        )
    return Table(values, [c.name for c in schema], source, list(schema), dropped)


def from_array(values: np.ndarray, columns: list[str] | None = None, source: str = "array",
               kinds: dict[str, list[str]] | None = None, drop_missing: bool = False) -> Table:
    """Validate an in-memory array of shape (n,) or (n, d) as a table of numeric columns (unless
    ``kinds`` declares some categorical or integer); NaN marks a missing cell."""
    array = np.asarray(values)
    array = array[:, None] if array.ndim == 1 else array
    if array.ndim != 2:
        raise UserError(f"{source}: expected shape (n,) or (n, d), got {array.shape}")
    _check_real(array.dtype, source)
    names = columns or [f"x{i + 1}" for i in range(array.shape[1])]
    import pandas as pd

    return from_frame(pd.DataFrame(array.astype(np.float64), columns=names), source, kinds, drop_missing)


def check_writable(path: str, schema: list[Column], rows: int | None = None) -> None:
    """Refuse, before any work, a format that cannot hold these columns (.npy holds numbers,
    Excel no time zones), ``rows`` rows (an Excel sheet, ``EXCEL_ROWS``) or that is not written
    (a .zip)."""
    if path != STDOUT and _compression(path) is zipfile:
        raise UserError(f"{path}: a .zip is read, not written; write {Path(path).with_suffix('.gz').name}")
    if file_format(path) == ".xlsx":
        zoned = next((c.name for c in schema if ", " in c.dtype), None)
        if zoned is not None:
            raise UserError(f"{path}: Excel holds no time zones, and column {zoned!r} has one; write .csv "
                            "or .parquet")
        if rows is not None and rows >= EXCEL_ROWS:
            raise UserError(f"{path}: an Excel sheet holds {EXCEL_ROWS - 1:,} rows below its header, not "
                            f"{rows:,}; write .csv or .parquet")
    if file_format(path) == ".npy":
        labelled = [c for c in schema if not c.numbers_only]
        if labelled:
            what = "is categorical" if labelled[0].kind == "categorical" else "holds dates or times"
            raise UserError(f"{path}: .npy holds numbers only, and column {labelled[0].name!r} "
                            f"{what}; write .csv or .parquet")


def write_table(path: str, values: np.ndarray | pd.DataFrame, columns: list[str] | None = None,
                schema: Sequence[Column] = ()) -> None:
    """Write a table (a DataFrame, or an array with ``columns``) in the format of the extension
    (``schema``: the columns' kinds, which choose a CSV's separator: ``csv_separator``)."""
    import pandas as pd

    frame = values if isinstance(values, pd.DataFrame) else pd.DataFrame(
        np.asarray(values, dtype=np.float64), columns=columns)
    write_chunks(path, [frame], len(frame), schema)


def csv_separator(path: str, schema: Sequence[Column] = ()) -> str:
    """The separator of a CSV (or .tsv) written at ``path``: a semicolon where numbers are written
    with a decimal comma, as spreadsheets in such locales write and read them, else a comma."""
    if file_format(path) in (".tsv", *WHITESPACE):
        return "\t" if file_format(path) == ".tsv" else " "
    return ";" if any(column.number_marks.endswith(",") for column in schema) else ","


def write_chunks(path: str, chunks: Iterable[pd.DataFrame | np.ndarray], rows: int,
                 schema: Sequence[Column] = ()) -> None:
    """Write ``rows`` rows arriving as DataFrames (or, for .npy, arrays), never holding more than
    one in memory; the dtypes and labels of the frames are kept (Parquet, Excel) or written as
    text (CSV: missing cells empty, separated by ``csv_separator``; CSV and JSON: the numbers of
    the ``schema``'s columns read from text written as they were, ``as_written``, every other
    number to its last digit: a user's cells come back as they were read, a model's have
    ``SIGNIFICANT_DIGITS``)."""
    suffix = file_format(path)
    if path == STDOUT:
        for i, chunk in enumerate(chunks):
            _write_csv(sys.stdout, as_written(chunk, schema), schema, i == 0, csv_separator(path, schema))
        sys.stdout.flush()
        return
    check_writable(path, schema, rows)
    with atomic_path(path) as temporary:
        if suffix == ".npy":
            array = None
            start = 0
            for chunk in chunks:
                if array is None:
                    array = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float64,
                                                      shape=(rows, chunk.shape[1]))
                array[start : start + len(chunk)] = (
                    chunk if isinstance(chunk, np.ndarray) else chunk.to_numpy(np.float64, na_value=np.nan))
                start += len(chunk)
            if array is None:
                with open(temporary, "wb") as handle:  # np.save would add .npy to a path's name
                    np.save(handle, np.empty((0, 0)))
                return
            array.flush()
            del array
        elif suffix in SEPARATED:
            with _open_text(temporary, "w", _compression(path), newline="", encoding="utf-8") as handle:
                whitespace = suffix in WHITESPACE
                for i, chunk in enumerate(chunks):
                    chunk = as_written(chunk, schema)
                    named = i == 0 and whitespace and not any(re.search(r"\s", str(c)) for c in chunk.columns)
                    if named:  # as savetxt's header: a "#" line that NumPy's loadtxt skips
                        handle.write("# " + " ".join(map(str, chunk.columns)) + "\n")
                    _write_csv(handle, chunk, schema, i == 0 and not named, csv_separator(path, schema),
                               na_rep="nan" if whitespace else "")
        elif suffix == ".xlsx":
            _write_excel(temporary, chunks)
        elif suffix in (".json", ".jsonl"):
            with _open_text(temporary, "w", _compression(path), encoding="utf-8") as handle:
                lines = (line for chunk in chunks for line in _json_lines(as_written(chunk, schema)))
                _write_json(handle, lines, array=suffix == ".json")
        else:
            import pyarrow as pa

            _write_arrow(temporary, suffix, (pa.Table.from_pandas(chunk, preserve_index=False)
                                             for chunk in chunks))


def _write_csv(handle: Any, chunk: pd.DataFrame, schema: Sequence[Column], header: bool, sep: str,
               na_rep: str = "") -> None:
    """A chunk of rows as CSV text, after the header and the units row (where the columns read
    from text had one) if ``header``."""
    import pandas as pd

    units = {c.name: c.unit for c in schema if c.unit}
    if header and units:
        chunk.iloc[:0].to_csv(handle, index=False, sep=sep)
        row = pd.DataFrame([[units.get(str(name), "") for name in chunk.columns]])
        row.to_csv(handle, header=False, index=False, sep=sep)
        header = False
    chunk.to_csv(handle, header=header, index=False, sep=sep, na_rep=na_rep)


def _write_arrow(path: str | os.PathLike, suffix: str, tables: Iterable[Any]) -> None:
    """Arrow tables one after another as one Parquet or Feather file, the first's schema for all
    (none: the empty file ``atomic_path`` made, as a process without rows leaves its part)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = schema = None
    try:
        for table in tables:
            if writer is None:
                schema = table.schema
                writer = (pa.ipc.new_file(str(path), schema) if suffix == ".feather"
                          else pq.ParquetWriter(path, schema))
            writer.write_table(table.cast(schema))
    finally:
        if writer is not None:
            writer.close()


def _write_json(handle: IO[str], lines: Iterable[str], array: bool) -> None:
    """JSON Lines as they come, or (``array``) as a .json file's array of them, a row per line."""
    if not array:
        handle.writelines(lines)
        return
    handle.write("[")
    for i, line in enumerate(lines):
        handle.write(("\n" if i == 0 else ",\n") + line.rstrip("\n"))
    handle.write("\n]\n")


def _json_lines(frame: pd.DataFrame) -> Iterator[str]:
    """Each row as a line of JSON: numbers to their last bit (as Python writes them: a model's
    numbers are already cut to ``SIGNIFICANT_DIGITS``), a missing cell null, dates and times in
    ISO 8601 unless they are text already."""
    import json

    import pandas as pd

    columns = []
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column.dtype):
            column = column.map(lambda cell: cell.isoformat(), na_action="ignore")
        columns.append(column.astype(object).where(column.notna(), None).tolist())  # Python's types
    # One encoder for every row (json.dumps with options builds one per call); a NumPy scalar
    # that an object column holds (a label) is written as its Python value.
    encoder = json.JSONEncoder(
        ensure_ascii=False, default=lambda cell: cell.item() if isinstance(cell, np.generic) else str(cell))
    names = [str(name) for name in frame.columns]
    for row in zip(*columns):
        yield encoder.encode(dict(zip(names, row))) + "\n"


def _write_excel(path: str | os.PathLike, chunks: Iterable[pd.DataFrame]) -> None:
    """Rows arriving as DataFrames, as one Excel sheet (openpyxl holds a workbook in memory until
    it is saved: a sheet's million rows at most, ``check_writable``)."""
    import pandas as pd

    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        start = 0
        for chunk in chunks:
            chunk.to_excel(writer, index=False, header=start == 0, startrow=start + (start > 0))
            start += len(chunk)
        if not writer.sheets:  # no rows (a process without any): a workbook holds a sheet
            pd.DataFrame().to_excel(writer, index=False)


def concatenate(parts: list[Path], path: str) -> None:
    """Join files of one format written by ``write_chunks`` (a table cut in consecutive rows)
    into ``path``, atomically, reading a piece at a time: memory does not grow with the rows."""
    suffix = file_format(path)
    with atomic_path(path) as temporary:
        if suffix == ".npy":
            arrays = [np.load(part, mmap_mode="r") for part in parts]
            columns = max((a.shape[1] for a in arrays if a.ndim == 2), default=0)
            out = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float64,
                                            shape=(sum(len(a) for a in arrays if a.size), columns))
            start = 0
            for array in (a for a in arrays if a.size):
                for first in range(0, len(array), 1 << 16):
                    piece = array[first : first + (1 << 16)]
                    out[start : start + len(piece)] = piece
                    start += len(piece)
            out.flush()
            del out
        elif suffix == ".xlsx":
            import pandas as pd

            _write_excel(temporary, (pd.read_excel(part, engine="openpyxl") for part in parts))
        elif suffix in (".json", ".jsonl"):
            with _open_text(temporary, "w", _compression(path), encoding="utf-8") as handle:
                _write_json(handle, _json_rows(parts, _compression(path), array=suffix == ".json"),
                            array=suffix == ".json")
        elif suffix in SEPARATED:
            with _open_binary(temporary, "w", _compression(path)) as handle:
                headed = False
                for part in parts:
                    with _open_binary(part, "r", _compression(path)) as source:
                        header = source.readline()  # each part's; the first kept
                        if header and not headed:
                            handle.write(header)
                            headed = True
                        while block := source.read(1 << 20):
                            handle.write(block)
        else:
            _write_arrow(temporary, suffix, _arrow_pieces([p for p in parts if p.stat().st_size], suffix))


def _arrow_pieces(parts: list[Path], suffix: str) -> Iterator[Any]:
    """The tables of Parquet or Feather ``parts`` a row group (a record batch) at a time, as written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for part in parts:
        if suffix == ".feather":
            with pa.memory_map(str(part)) as source:
                reader = pa.ipc.open_file(source)
                for batch in range(reader.num_record_batches):
                    yield pa.Table.from_batches([reader.get_batch(batch)])
        else:
            source = pq.ParquetFile(part)
            for group in range(source.num_row_groups):
                yield source.read_row_group(group)


def _json_rows(parts: list[Path], compression: Any, array: bool) -> Iterator[str]:
    """The rows of JSON Lines ``parts``, or of .json arrays that ``_write_json`` wrote (a row per
    line between the brackets), one line at a time."""
    for part in parts:
        with _open_text(part, "r", compression, encoding="utf-8") as source:
            for line in source:
                if array:
                    line = line.rstrip().removesuffix(",")
                    if line in ("[", "]", ""):
                        continue
                    line += "\n"
                yield line


def is_parts_folder(path: str) -> bool:
    """Whether an output path names a folder of Parquet parts (it ends with a slash, or is a
    folder already) rather than one file."""
    return path.endswith(("/", os.sep)) or os.path.isdir(path)


def refuse_overwriting(path: str, kept: dict[str, str]) -> None:
    """Refuse an output ``path`` that is one of the ``kept`` files (``{path: what it is}``): the
    command's own inputs, a run's training data or files; nothing the user keeps is replaced."""
    if path == STDOUT:
        return
    target = os.path.realpath(path)
    for other, what in kept.items():
        if other and os.path.realpath(workbook_sheet(other)[0]) == target:
            raise UserError(f"{path} is {what}, which is kept: write to another file")


def check_output(path: str, schema: list[Column], rows: int | None = None) -> None:
    """Refuse, before any work, an output that cannot be written: a format that cannot hold
    these columns or ``rows`` rows (``check_writable``), or a folder for Parquet parts that holds
    anything (parts of an earlier, larger output would be mistaken for this one's)."""
    if not is_parts_folder(path):
        check_writable(path, schema, rows)
    elif os.path.isdir(path) and any(Path(path).iterdir()):
        raise UserError(f"{path} is not empty: write the parts to a new or empty folder")


def part_name(index: int) -> str:
    """The file name of the ``index``-th Parquet part, sorting in row order."""
    return f"part-{index:05d}.parquet"
