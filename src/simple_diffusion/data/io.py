"""Reading tables of numbers (``.npy``, ``.csv``, ``.parquet``) with clear errors, and writing
samples back in the same format, atomically.

>>> import numpy as np, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "x.csv")
>>> write_table(path, np.array([[1.0, 2.0], [3.0, 4.0]]), ["a", "b"])
>>> table = read_table(path)
>>> table.columns, table.values.shape
(['a', 'b'], (2, 2))
"""

from __future__ import annotations

import contextlib
import os
import secrets
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UserError

if TYPE_CHECKING:  # pandas is imported by the readers alone: writing samples needs none
    import pandas as pd

FORMATS = (".npy", ".csv", ".parquet")
MANY_COLUMNS = 64


@dataclass
class Table:
    """A float64 array of shape (n, d) with a name per column."""

    values: np.ndarray
    columns: list[str]
    source: str


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


def file_format(path: str) -> str:
    """The file's format by its extension (``.npy``, ``.csv``, ``.parquet``), or a clear error."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"{path}: unsupported file type {suffix or '(none)'}; use {', '.join(FORMATS)}")
    return suffix


def read_table(
    path: str, columns: list[str] | None = None, header: bool | None = None
) -> Table:
    """Read a table of numbers, keep ``columns`` (names, or indices for ``.npy``), and validate.

    ``header=None`` detects a CSV header: a first row with any non-numeric cell is one.
    """
    suffix = file_format(path)
    if not os.path.exists(path):
        raise UserError(f"data file not found: {path}")
    if os.path.isdir(path):
        raise UserError(f"{path} is a folder, not a data file")
    if suffix == ".npy":
        frame = _read_npy(path)
    elif suffix == ".csv":
        frame = _read_csv(path, header)
    else:
        frame = _read_parquet(path)
    if columns:
        frame = _select(frame, columns, path)
    return _validate(_numeric(frame, path), path)


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


def _read_csv(path: str, header: bool | None) -> pd.DataFrame:
    import pandas as pd
    try:
        raw = pd.read_csv(path, header=None, dtype=str, skip_blank_lines=True,
                          keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise UserError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: not a readable CSV ({message})") from None
    if header is None:
        header = not all(_is_number(cell) for cell in raw.iloc[0])
    if header:
        names = [str(c).strip() or f"column {i}" for i, c in enumerate(raw.iloc[0])]
        if len(set(names)) != len(names):
            raise UserError(f"{path}: the header repeats a column name")
        frame, first_row = raw.iloc[1:].reset_index(drop=True), 2
    else:
        names, frame, first_row = [str(i) for i in range(raw.shape[1])], raw, 1
    frame.columns = names
    frame.attrs["first_row"] = first_row
    return frame


def _read_parquet(path: str) -> pd.DataFrame:
    import pandas as pd
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a corrupt file
        raise UserError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _numeric(frame: pd.DataFrame, path: str) -> pd.DataFrame:
    """The picked columns as float64; every column that is not numbers named in one message."""
    import pandas as pd
    first_row = frame.attrs.get("first_row", 0)
    numbers, problems = {}, []
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            cells = column.astype(str).str.strip()
            values = pd.to_numeric(cells.replace("", "nan"), errors="coerce")
            bad = (values.isna() & ~cells.str.lower().isin(["nan", "", "na", "null"])).to_numpy()
            if bad.any():
                row = int(np.argmax(bad))
                where = f"line {row + first_row}" if path.endswith(".csv") else f"row {row}"
                problems.append(f"column {name!r} has a non-numeric value {cells.iloc[row]!r} at {where}")
                continue
            numbers[name] = values.to_numpy(dtype=np.float64)
            continue
        try:
            _check_real(np.dtype(column.dtype), f"{path}: column {name!r}")
        except TypeError:  # pandas-only dtypes (categories, dates)
            problems.append(f"column {name!r} is not numeric ({column.dtype})")
            continue
        numbers[name] = column.to_numpy(dtype=np.float64)
    if problems:
        numeric = [name for name in frame.columns if name in numbers]
        hint = (f"; pick the numeric ones with --columns {','.join(numeric)}" if numeric else "")
        raise UserError(f"{path}: " + "; ".join(problems) + hint)
    table = pd.DataFrame(numbers, columns=list(frame.columns))
    table.attrs = frame.attrs
    return table


def _check_real(dtype: np.dtype, source: str) -> None:
    """Refuse anything but real numbers: a complex value would lose its imaginary part."""
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)
            or np.issubdtype(dtype, np.bool_)):
        raise UserError(f"{source}: values of type {dtype} are not real numbers")


def _select(frame: pd.DataFrame, columns: list[str], path: str) -> pd.DataFrame:
    picked = []
    for name in columns:
        name = name.strip()
        if name in frame.columns:
            picked.append(name)
        elif name.lstrip("-").isdigit() and -frame.shape[1] <= int(name) < frame.shape[1]:
            picked.append(frame.columns[int(name)])
        else:
            raise UserError(f"{path}: no column {name!r}; columns are {', '.join(frame.columns)}")
    selected = frame[picked]
    selected.attrs = frame.attrs
    return selected


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _validate(frame: pd.DataFrame, path: str) -> Table:
    if frame.shape[1] == 0:
        raise UserError(f"{path}: no columns of data")
    values = frame.to_numpy(dtype=np.float64)
    if len(values) < 2:
        raise UserError(f"{path}: need at least 2 rows of data, found {len(values)}")
    finite = np.isfinite(values)
    if not finite.all():
        rows = np.flatnonzero(~finite.all(1))
        first = int(rows[0])
        column = frame.columns[int(np.flatnonzero(~finite[first])[0])]
        line = first + frame.attrs.get("first_row", 0)
        where = f"line {line}" if path.endswith(".csv") else f"row {first}"
        raise UserError(
            f"{path}: {int((~finite).sum())} NaN or infinite values, the first at {where} "
            f"in column {column!r}"
        )
    if values.shape[1] > MANY_COLUMNS:
        warnings.warn(
            f"{path}: {values.shape[1]} columns; beyond {MANY_COLUMNS} a small MLP fits poorly",
            stacklevel=2,
        )
    return Table(values, [str(c) for c in frame.columns], path)


def from_array(values: np.ndarray, columns: list[str] | None = None, source: str = "array") -> Table:
    """Validate an in-memory array of shape (n,) or (n, d) as a table."""
    array = np.asarray(values)
    array = array[:, None] if array.ndim == 1 else array
    if array.ndim != 2:
        raise UserError(f"{source}: expected shape (n,) or (n, d), got {array.shape}")
    _check_real(array.dtype, source)
    names = columns or [f"x{i + 1}" for i in range(array.shape[1])]
    import pandas as pd

    return _validate(pd.DataFrame(array.astype(np.float64), columns=names), source)


def write_table(path: str, values: np.ndarray, columns: list[str]) -> None:
    """Write samples in the format given by the extension, keeping the column names."""
    write_chunks(path, [np.asarray(values, dtype=np.float64)], columns, len(values))


def write_chunks(path: str, chunks: Iterable[np.ndarray], columns: list[str], rows: int) -> None:
    """Write ``rows`` rows arriving in pieces, never holding more than one piece in memory."""
    suffix = file_format(path)
    with atomic_path(path) as temporary:
        if suffix == ".npy":
            array = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float64,
                                              shape=(rows, len(columns)))
            start = 0
            for chunk in chunks:
                array[start : start + len(chunk)] = chunk
                start += len(chunk)
            array.flush()
            del array
        elif suffix == ".csv":
            with open(temporary, "w", newline="") as handle:
                handle.write(",".join(columns) + "\n")
                for chunk in chunks:
                    np.savetxt(handle, chunk, delimiter=",", fmt="%.9g")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            schema = pa.schema([(name, pa.float64()) for name in columns])
            with pq.ParquetWriter(temporary, schema) as writer:
                for chunk in chunks:
                    writer.write_table(pa.Table.from_arrays(list(chunk.T), schema=schema))
