"""Column kinds of a table (numeric, integer, categorical), detected from the data and overridable,
and the conversion between a pandas DataFrame and the float matrix the encoders read.

In that matrix a numeric or integer column holds its values, a categorical column the index of
its label in ``Column.categories``, and a missing cell is NaN in either. Dates, times and
durations (pandas' datetime and timedelta dtypes, and text written as dates) are integer columns
counting whole units (days, hours, ... : ``Column.time_unit``) from the data's earliest one, so
that samples land on the data's grid. ``to_frame`` turns such a matrix back into a DataFrame
with the original labels and dtypes (dates read from text written back in their format).

>>> import pandas as pd
>>> frame = pd.DataFrame({"mass": [3.5, None, 4.0], "n": [1, 2, 3], "kind": ["a", "b", "a"]})
>>> schema = detect(frame)
>>> [(c.name, c.kind) for c in schema]
[('mass', 'numeric'), ('n', 'integer'), ('kind', 'categorical')]
>>> values = to_values(frame, schema)
>>> values[:, 2].tolist()
[0.0, 1.0, 0.0]
>>> to_frame(values, schema).equals(frame)
True
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UserError, advice, did_you_mean, no_such_column

if TYPE_CHECKING:
    import pandas as pd

MISSING_TOKENS = frozenset({"", "nan", "na", "n/a", "null", "none", "<na>", "#n/a", "#na", "#n/a n/a",
                            "-nan", "1.#ind", "-1.#ind", "1.#qnan", "-1.#qnan", "?",
                            "#div/0!", "#value!", "#ref!", "#name?", "#num!", "#null!"})
"""Cells of a text column that mean 'missing' (compared in lower case, stripped): pandas' own
markers, the UCI repository's "?", and the errors a spreadsheet exports in place of a value
(``#DIV/0!``)."""
NUMBER_GAPS = frozenset({"-", "--", "."})
"""Cells that mean 'missing' among numbers only: a spreadsheet's dash, SAS's and Stata's point.
Among labels they are labels (a test's "+" and "-")."""
TIME_UNITS = {"D": 86_400 * 10**9, "h": 3_600 * 10**9, "min": 60 * 10**9, "s": 10**9, "ms": 10**6,
              "us": 10**3}
"""The units a date, time or duration column may count in (their length in nanoseconds),
coarsest first: a column counts in the coarsest in which every value of the data is whole."""
UNIT_NAMES = {"D": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
              "us": "microseconds"}
CYCLE_NAMES = {365.2425: "year", 7.0: "week", 1.0: "day"}
"""The cycles a date may follow (``Column.cycles``), by their lengths in days."""
CYCLE_EXAMPLES = {365.2425: "seasons", 7.0: "weekdays", 1.0: "hours"}
CYCLE_PHASES = 4
"""Of a cycle's 24 equal parts, how many a column's dates must fall in for the cycle to count:
weekly readings (all on a Saturday) do not say where in the week other days fall."""
IDENTIFIER_ROWS = 20
"""A text column with a different value in each of at least this many rows is an identifier."""
_INTEGER_TEXT = re.compile(r"^[+-]?\d+$")


class SheetRow(int):
    """The number of a table's first row where a cell's place is its row (a spreadsheet's sheet,
    a JSON table's objects); a text file's (a CSV's) is a plain int, the number of its line."""


def position(row: int, first_row: int | None) -> str:
    """Where the table's ``row`` (from 0) is, for a message: a text file's line, a sheet's row
    (``first_row`` a ``SheetRow``), or the row of an array or a DataFrame (no ``first_row``)."""
    if first_row is None:
        return f"row {row}"
    return f"{'row' if isinstance(first_row, SheetRow) else 'line'} {row + first_row}"


def refuse_infinite(values: np.ndarray, names: Sequence[str], source: str,
                    first_row: int | None = None) -> None:
    """A one-line error naming the first infinite cell of ``values`` (rows of ``names``), if any:
    no row can hold one, and conditioning on it would fill its row with NaN."""
    infinite = np.isinf(values)
    if infinite.any():
        first = int(np.flatnonzero(infinite.any(1))[0])
        column = names[int(np.flatnonzero(infinite[first])[0])]
        count = int(infinite.sum())
        what = "an infinite value" if count == 1 else f"{count:,} infinite values, the first"
        where = "" if len(values) == 1 else f" at {position(first, first_row)}"
        raise UserError(f"{source}: {what}{where} in column {column!r}")


@dataclass
class Column:
    """One column: its name, kind, labels (categorical) and the dtype to give back."""

    name: str
    kind: str
    dtype: str = "float64"
    categories: list[Any] = field(default_factory=list)
    """Labels of a categorical column, in code order (JSON-serialisable Python values)."""
    nullable: bool = False
    """Whether the table has missing cells here: its output dtype then holds missing values in
    every chunk of samples alike (``Int64``, ``boolean``), whether or not a chunk has any."""
    time_unit: str = ""
    """A date, time or duration column (kind integer): the ``TIME_UNITS`` unit its values count."""
    time_origin: str = ""
    """What a date or time column's values count from: the data's earliest value (ISO 8601, in
    UTC for a column with a time zone); empty for a duration (counted from zero)."""
    time_format: str = ""
    """The ``strftime`` format of dates read from text, in which samples are written back."""
    cycles: list[float] = field(default_factory=list)
    """The cycles (``CYCLE_NAMES``) whose phases a date column's values cover (``CYCLE_PHASES``): what
    a network given such a date as its condition is shown of it (``CalendarTerms``)."""
    number_format: str = ""
    """How numbers read from text were written, as a ``str.format`` template of one number with a
    point for its decimal mark and commas for thousands: a currency sign or unit, thousands
    separators, the decimal places, zero padding (``"${:,.2f}"``, ``"{:.1f}%"``, ``"{:05.0f}"``),
    and after a ``;`` a section for negatives where they were written in parentheses
    (``"${:,.2f};(${:,.2f})"``, as a spreadsheet's format has one). Samples are written the same
    way; empty for plain numbers."""
    number_marks: str = ""
    """The thousands separator and the decimal mark those numbers were written with, where not a
    comma and a point: ``".,"`` (1.234,5), ``" ,"`` (1 234,5), ``"'."`` (1'234.5)."""
    unit: str = ""
    """The column's unit, from a units row under a text table's header (``kg``, ``[cm]``): shown
    on the plots' axes, and written under the header of a CSV of samples."""

    def state(self) -> dict[str, Any]:
        return asdict(self) | {"categories": [_label_state(label) for label in self.categories]}

    @property
    def clock_only(self) -> bool:
        """Whether the column holds times of day written without a date ("13:55")."""
        return bool(self.time_format) and not re.search("%-?[YymdbBjaAG]", self.time_format)

    @property
    def kind_name(self) -> str:
        """The kind as ``train`` prints it: ``datetime``, ``time of day`` or ``duration`` for time
        columns."""
        if not self.time_unit:
            return self.kind
        what = ("duration" if self.dtype.startswith("timedelta") else "time of day" if self.clock_only
                else "datetime")
        return f"{what} in {UNIT_NAMES[self.time_unit]}"

    @property
    def axis_label(self) -> str:
        """The name, with its unit (``mass (kg)``) or what a time column's numbers count: ``when
        (hours from 2023-03-01)``."""
        if not self.time_unit:
            return f"{self.name} ({self.bare_unit})" if self.unit else self.name
        start = self.time_origin.partition("T")[2] if self.clock_only else self.time_origin  # no 1900-01-01
        origin = f" from {start}{' UTC' if ', ' in self.dtype else ''}" if self.time_origin else ''
        return f"{self.name} ({UNIT_NAMES[self.time_unit]}{origin})"

    @property
    def bare_unit(self) -> str:
        """The unit without the brackets it was written in: ``[cm]`` is ``cm``."""
        return self.unit[1:-1] if self.unit[:1] + self.unit[-1:] in ("[]", "()") else self.unit

    @property
    def numbers_only(self) -> bool:
        """Whether the column's cells are plain numbers (what a .npy file can hold)."""
        return self.kind != "categorical" and not self.time_unit


def describe(schema: Sequence[Column]) -> str:
    """``"mass numeric, n integer, kind categorical (2)"``, for train's printout."""
    return ", ".join(
        f"{c.name} {c.kind_name}" + (f" ({len(c.categories)})" if c.kind == "categorical" else "")
        + (f" ({c.time_format})" if c.time_format else "")
        + (f" (as {_example(c)})" if c.number_format else "")
        + (f" in {c.bare_unit}" if c.unit else "")
        for c in schema
    )


def parse_option_list(value: str) -> list[str]:
    """The names of an option's comma-separated list (CSV quoting for a name with a comma in it,
    as ``errors.advice`` writes one), spaces around each dropped."""
    import csv

    return [name.strip() for name in next(csv.reader([value], skipinitialspace=True), []) if name.strip()]


def _example(column: Column) -> str:
    """A number written as the column's numbers are: ``$1,234.50``, ``12.5%``, ``00012``; and a
    negative one where they have a way of their own (``$1,234.50, ($1,234.50)``)."""
    number = 1234.5 if "," in column.number_format else 12.5
    shown = [number, -number] if ";" in column.number_format else [number]
    return ", ".join(written_numbers(np.array(shown), column))


def detect(
    frame: pd.DataFrame,
    categorical: Sequence[str] = (),
    integer: Sequence[str] = (),
    numeric: Sequence[str] = (),
    first_row: int | None = None,
    parsed: dict[str, np.ndarray] | None = None,
) -> list[Column]:
    """The kind of every column of ``frame``, with the names given in the overrides forced;
    ``parsed`` receives the numbers read from each text column of numbers, so that they are
    not read twice (parsing is most of reading a large CSV).

    Booleans, pandas categories and text are categorical; whole-number dtypes (and text columns
    whose every cell is a whole number) are integer; dates, times and durations (and text whose
    every cell is a date in one format) are time columns; other numbers are numeric. A text column
    with a different value in every row is refused as an identifier, and one mixing numbers with
    a few words is refused as a typo, naming the cell (its line, for a CSV read as text with
    ``first_row`` the line of its first row).
    """
    forced = forced_kinds(list(frame.columns), categorical, integer, numeric)
    return finish([find(frame[name], str(name), forced.get(name), first_row, parsed)
                   for name in frame.columns])


def forced_kinds(columns: Sequence[str], categorical: Sequence[str] = (), integer: Sequence[str] = (),
                 numeric: Sequence[str] = ()) -> dict[str, str]:
    """``{column: kind}`` of the declared kinds, checked against the table's ``columns``."""
    forced: dict[str, str] = {}
    for names, kind in ((categorical, "categorical"), (integer, "integer"), (numeric, "numeric")):
        for name in names:
            if name not in columns:
                raise no_such_column(f"data.{kind}", name, columns)
            if name in forced and forced[name] != kind:
                raise UserError(f"column {name!r} is declared both {forced[name]} and {kind}")
            forced[name] = kind
    return forced


@dataclass
class Finding:
    """What one column's cells say about its kind: the column (a categorical one with its labels
    as found, text not yet read as booleans or integers), and what decides the rest. Findings of
    the same column over consecutive row groups ``merge`` into the whole column's."""

    column: Column
    text: bool = False
    present: int = 0
    """Cells that are not missing."""
    forced: bool = False
    counts: tuple[str, float] | None = None
    """Where an undeclared column's whole numbers count in row order (``_counting``): ``rows``
    (one more each row), ``groups`` (the same or one more, in runs of about equal length) or
    ``sorted`` (runs of unequal length), and its first value: a saved index, a group ID or a
    sorted column (maybe a group ID) if 0 or 1."""
    phases: dict[float, set[int]] = field(default_factory=dict)
    """For a date column: which of each cycle's 24 parts its dates fall in (``Column.cycles``)."""
    spacing: float = float("inf")
    """For a date column: the least time between two of its dates, in days."""

    def merge(self, other: Finding) -> Finding:
        a, b = self.column, other.column
        phases: dict[float, set[int]] = {}
        if a.kind == "categorical" or b.kind == "categorical":
            if a.kind != b.kind:
                raise UserError(f"column {a.name!r} holds categories in some rows and numbers in others")
            text = self.text or other.text
            labels = {str(v).strip() if text else v for v in (*a.categories, *b.categories)}
            merged = Column(a.name, "categorical", (a if self.text else b).dtype, _ordered(labels),
                            a.nullable or b.nullable)
        elif a.time_unit:  # the finer unit of the two, from the earlier origin
            unit = max(a.time_unit, b.time_unit, key=list(TIME_UNITS).index)
            origin = min(a.time_origin, b.time_origin) if a.time_origin and b.time_origin else ""
            phases = {period: self.phases.get(period, set()) | other.phases.get(period, set())
                      for period in CYCLE_NAMES}
            merged = replace(a, nullable=a.nullable or b.nullable, time_unit=unit, time_origin=origin,
                             cycles=_covered(phases, min(self.spacing, other.spacing)))
        else:  # a whole-number dtype where a row group has no gap, floats where one has
            kind = a.kind if a.kind == b.kind else "numeric"
            merged = Column(a.name, kind, a.dtype if a.dtype == b.dtype else "float64",
                            nullable=a.nullable or b.nullable)
        counting = None
        if self.counts is not None and other.counts is not None:
            kinds = {self.counts[0], other.counts[0]}
            kind = "rows" if kinds == {"rows"} else "sorted" if "sorted" in kinds else "groups"
            counting = (kind, self.counts[1])
        return Finding(merged, self.text or other.text, self.present + other.present, self.forced, counting,
                       phases, min(self.spacing, other.spacing))


def find(column: pd.Series, name: str, forced: str | None = None, first_row: int | None = None,
         parsed: dict[str, np.ndarray] | None = None) -> Finding:
    """The ``Finding`` of one column's cells (``forced``: its declared kind; ``parsed``: see
    ``detect``)."""
    import pandas as pd

    dtype = column.dtype
    if pd.api.types.is_complex_dtype(dtype):
        raise UserError(f"column {name!r}: values of type {dtype} are not real numbers")
    text = _is_text(column) and not _holds_decimals(column)
    if isinstance(dtype, pd.PeriodDtype):  # a PeriodIndex reset (1960Q1, ...): dates, given back as periods
        finding = _time_finding(column.dt.start_time, name, forced, None, parsed)
        return replace(finding, column=replace(finding.column, dtype=str(dtype)))
    if _is_time(dtype):
        return _time_finding(column, name, forced, None, parsed)
    if text and first_row is not None:  # a CSV read as text: its typing is ours to find
        numbers = _numbers_of_text(column, name, forced, first_row)
        dated = numbers is None or (forced is None and _compact_dates(column, numbers.values))
        # Numbers that are mostly dates, but not all, stay numbers: a typo is only a typo in dates.
        written = (_written_dates(column, name, first_row, typos=numbers is None)
                   if dated and forced != "categorical" else None)
        if written:
            return _time_finding(column, name, forced, written, parsed)
        if numbers is not None:
            values = numbers.values
            if parsed is not None:
                parsed[name] = values
            padded = None if numbers.number_format else _padded(column, values)
            whole = ".0f}" in numbers.number_format if numbers.number_format else padded is not None
            kind = forced or ("integer" if whole else "numeric")
            return Finding(Column(name, kind, "int64" if kind == "integer" else "float64",
                                  nullable=bool(np.isnan(values).any()),
                                  number_format=numbers.number_format or padded or "",
                                  number_marks=numbers.number_marks),
                           present=int((~np.isnan(values)).sum()),
                           counts=None if forced else _counting(values))
    if text and forced is None and (written := _written_dates(column, name, first_row)):
        return _time_finding(column, name, forced, written, parsed)
    kind = forced
    if kind is None:
        if text or isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
            kind = "categorical"
        elif pd.api.types.is_integer_dtype(dtype):
            kind = "integer"
        else:
            kind = "numeric"
    if kind != "categorical":
        values = _as_numbers(column, name, first_row)  # refuses a column that is not numbers
        counting = _counting(values) if forced is None and kind == "integer" else None
        return Finding(Column(name, kind, "float64" if text else _dtype_name(dtype),
                              nullable=bool(missing_cells(column).any())),
                       present=int((~np.isnan(values)).sum()), counts=counting)
    present = int((~missing_cells(column)).sum())
    return Finding(Column(name, "categorical", _dtype_name(dtype), _labels(column), present < len(column)),
                   text, present, forced is not None)


def _is_time(dtype: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype)


def _written_dates(column: pd.Series, name: str, first_row: int | None = None, typos: bool = True
                   ) -> tuple[str, pd.Series] | None:
    """The ``strftime`` format in which every present cell of a text column is written and the
    cells read in it (UTC, NaT where missing), if they are calendar dates (a year and a month at
    least: "2024-03-01", "01/03/2024 10:30", "2024-03", "20240301"), quarters ("2024Q1",
    "2024-Q1", "Q1 2024": ``%q`` in the format, on the quarter's first day) or times of day
    ("13:55", "7:05:30", "1:05 PM": on 1900-01-01, as ``strptime`` reads them), else None.
    Day-first formats are tried where month-first ones fail. With ``typos``, a column whose cells
    are mostly dates in one format, but not all, is an error naming the first that is not (a
    typo, or dates in two formats)."""
    # The first present cell guesses a format, so that a column of labels costs one guess.
    head = column.head(1000)
    first = next((str(cell).strip() for cell, gap in zip(head, missing_cells(head)) if not gap), None)
    if first is None:
        return None
    text, nearest = None, None
    for written in _guessed_formats(first):
        if text is None:
            missing = missing_cells(column)
            text = column.astype(str).str.strip().where(~missing)
        times = read_dates(text, written, utc=True)
        bad = times.isna().to_numpy() & ~missing
        if not bad.any():
            return _unpadded_format(written, text), times.dt.tz_localize(None)
        if nearest is None or bad.sum() < nearest[1].sum():
            nearest = written, bad
    # Mostly dates, as a column of numbers with a few words is mostly numbers: by distinct cells.
    if typos and nearest is not None and text[nearest[1]].nunique() < 0.5 * text.nunique():
        written, bad = nearest
        row = int(np.flatnonzero(bad)[0])
        raise UserError(f"column {name!r} holds dates written as {_shown(written)}, but not "
                        f"{text.iloc[row]!r} at {position(row, first_row)}: fix the cell, or learn the "
                        f"column as labels with {advice({'data.categorical': [name]})}")
    return None


def _guessed_formats(first: str) -> list[str]:
    """The date formats a column whose first present cell is ``first`` may be written in: a
    quarter's, a time of day's (pandas guesses no format for either), or pandas' guesses,
    month first then day first, that hold a year and a month."""
    from pandas.tseries.api import guess_datetime_format

    if quarter := _QUARTER.fullmatch(first):
        if quarter["year"]:
            return ["%Y" + quarter["before"] + quarter["mark"] + "%q"]
        return [quarter["mark_first"] + "%q" + quarter["after"] + "%Y"]
    if clock := _CLOCK_TIME.fullmatch(first):
        written = "%I:%M" if clock["half"] else "%H:%M"
        return [written + (":%S" if clock["seconds"] else "") + (" %p" if clock["half"] else "")]
    guesses = []
    for day_first in (False, True):
        with warnings.catch_warnings():  # pandas' notes on the day-first convention it guessed
            warnings.simplefilter("ignore", UserWarning)
            written = guess_datetime_format(first, dayfirst=day_first)
        if written is not None and re.search("%[Yy]", written) and re.search("%[mbB]", written):
            # A "Z" for UTC is written back as one, not as strftime's +0000.
            guesses.append(written[:-2] + "Z" if written.endswith("%z") and first.endswith("Z") else written)
    return guesses or [written for written in UNGUESSED_FORMATS if _reads(first, written)]


UNGUESSED_FORMATS = ("%b %Y", "%B %Y", "%b-%y", "%b-%Y", "%m/%Y", "%YM%m", "%Y%m", "%G-W%V", "%GW%V",
                     "%m/%d/%y", "%d/%m/%y", "%m-%d-%y", "%d-%m-%y", "%d.%m.%y")
"""Date formats pandas guesses none for, tried in turn where it guesses none: months ("Jan 2024",
Excel's "Jan-24", "01/2024", Eurostat's "2024M01", "202401"), ISO weeks ("2024-W05", on their
Monday) and two-digit years ("1/5/24", month first where a day past 12 does not say otherwise).
Not "Jan 24", which may be a day without a year."""


def _shown(written: str) -> str:
    """A date format for a message, with an example: ``%d.%m.%Y (01.03.2024)``."""
    import pandas as pd

    return f"{written} ({_strftime(pd.Series([pd.Timestamp('2024-03-01 13:55')]), written)[0]})"


def _reads(cell: str, written: str) -> bool:
    """Whether ``cell`` is a date written in ``written``."""
    import pandas as pd

    return bool(read_dates(pd.Series([cell]), written).notna()[0])


def strptime_reads(written: str) -> bool:
    """Whether ``strptime`` reads dates in the format ``written`` by itself: not quarters
    (``%q``, ours) nor ISO weeks without a weekday (which ``read_dates`` puts on their Monday)."""
    return "%q" not in written and "%V" not in written


def read_dates(text: pd.Series, written: str, utc: bool = False) -> pd.Series:
    """Text cells as the dates they write in the format ``written`` (NaT where one does not):
    pandas' ``to_datetime`` (each cell in its own format where ``written`` is empty); ISO weeks
    as their Mondays; quarters (``%q``, which ``strptime``
    lacks) as their first days, in any of ``_QUARTER``'s spellings (a given 2024-Q1 for a column
    of 2024Q1)."""
    import pandas as pd

    if "%V" in written:  # an ISO week names no day: its Monday
        return pd.to_datetime(text + "-1", format=strptime_format(written) + "-%u", errors="coerce", utc=utc)
    if "%q" not in written:
        return pd.to_datetime(text, format=strptime_format(written) or "mixed", errors="coerce", utc=utc)
    parts = text.str.extract(_QUARTER.pattern)
    year, quarter = parts["year"].fillna(parts["last_year"]), parts["quarter"].fillna(parts["first_quarter"])
    dates = pd.to_datetime({"year": pd.to_numeric(year), "month": 3 * pd.to_numeric(quarter) - 2, "day": 1},
                           errors="coerce", utc=utc)
    return dates.where(text.str.fullmatch(_QUARTER.pattern).fillna(False).astype(bool))


COMPACT_DATES = {8: (10_000_101, 99_991_231), 6: (180_001, 210_012)}
"""Digits of a date written without separators, and the numbers such dates lie between: a day
(20240301) and a month of the years 1800-2100 (202403, a finance or statistics table's)."""


def _compact_dates(column: pd.Series, values: np.ndarray) -> bool:
    """Whether a text column read as whole numbers may be dates written without separators
    (``COMPACT_DATES``: a database's, a bank's or a statistics office's export): as many digits
    in every present cell, the numbers looked at first so that a column of other numbers costs
    no text search."""
    present = values[~np.isnan(values)]
    digits = next((digits for digits, (low, high) in COMPACT_DATES.items()
                   if len(present) and low <= present.min() and present.max() <= high), None)
    if digits is None or not np.array_equal(present, np.round(present)):
        return False
    cells = column[~missing_cells(column)].astype(str).str.strip()
    return bool(cells.str.fullmatch(rf"\d{{{digits}}}").all())


_CLOCK_TIME = re.compile(r"\d{1,2}:\d{2}(?P<seconds>:\d{2})?(?P<half> ?[AaPp][Mm])?")
"""A time of day: hours and minutes, seconds maybe, and AM or PM maybe."""
_QUARTER = re.compile(r"(?P<year>\d{4})(?P<before>[-/ _]?)(?P<mark>[Qq])(?P<quarter>[1-4])"
                      r"|(?P<mark_first>[Qq])(?P<first_quarter>[1-4])(?P<after>[-/ _]?)(?P<last_year>\d{4})")
"""A quarter as economists' tables write it: 2024Q1, 2024-Q1, 2024 q1, Q1 2024, Q1-2024."""
_DATE_FIELDS = {"Y": r"\d{4}", "y": r"\d{2}", "q": "[1-4]", "m": r"\d{1,2}", "d": r"\d{1,2}",
                "j": r"\d{1,3}", "H": r"\d{1,2}", "I": r"\d{1,2}", "M": r"\d{2}", "S": r"\d{2}",
                "f": r"\d{1,9}", "p": r"[AaPp][Mm]", "z": r"[+-]\d{2}:?\d{2}|Z", "%": "%",
                "b": r"[^\W\d_]+", "B": r"[^\W\d_]+", "a": r"[^\W\d_]+", "A": r"[^\W\d_]+"}
"""What each ``strftime`` field of a guessed date format matches (``%q``, a quarter, is ours)."""
UNPADDED_FIELDS = "mdHI"
"""The fields a date may write without a leading zero ("1/2/2020", "9:05"), which GNU's ``strftime``
notation marks ``%-d``: such a format is read as its padded self and written without the zeros."""


def _date_pattern(written: str) -> tuple[re.Pattern, list[str]] | None:
    """A regular expression of the dates a format writes, a group per field, and the fields in
    order; None for a field it does not know."""
    parts, fields = [], []
    for literal, letter in re.findall(r"([^%]*)(?:%-?(.))?", written):
        parts.append(re.escape(literal))
        if letter:
            if letter not in _DATE_FIELDS:
                return None
            parts.append(f"({_DATE_FIELDS[letter]})")
            fields.append(letter)
    return re.compile("".join(parts)), fields


def _unpadded_format(written: str, text: pd.Series) -> str:
    """``written`` with ``%-m``, ``%-d``, ... where a cell of ``text`` (read in it) writes that
    field with one digit, so that samples come back as the data wrote them."""
    pattern = _date_pattern(written)
    if pattern is None:
        return written
    regex, fields = pattern
    short = set()
    for cell in text.dropna().unique()[:10_000]:
        match = regex.fullmatch(cell)
        if match:
            short |= {letter for letter, value in zip(fields, match.groups()) if len(value) == 1}
    for letter in short & set(UNPADDED_FIELDS):
        written = written.replace(f"%{letter}", f"%-{letter}")
    return written


def strptime_format(written: str) -> str:
    """A date format as ``strptime`` and pandas read it (``%-d`` is ``%d``: one digit or two)."""
    return written.replace("%-", "%")


def _strftime(times: pd.Series, written: str) -> pd.Series:
    """Dates as text in a format whose ``%-d`` fields drop their leading zero (GNU's notation,
    which other platforms' ``strftime`` lacks: the padded text is trimmed here)."""
    if "%q" in written:  # strftime has no quarter: the text around it, and the quarter between
        before, after = written.split("%q", 1)
        quarter = times.dt.quarter.astype("Int64").astype(str)
        return _strftime(times, before) + quarter + _strftime(times, after)
    text = times.dt.strftime(strptime_format(written))
    if "%-" not in written:
        return text
    regex, fields = _date_pattern(strptime_format(written))
    trimmed = [k for k, field in enumerate(re.findall(r"%(-?)(.)", written)) if field[0] == "-"]

    def trim(match: re.Match) -> str:
        pieces, last = [], match.start()
        for k in range(len(fields)):
            start, end = match.span(k + 1)
            value = match.group(k + 1)
            pieces += [match.string[last:start], value.lstrip("0") or "0" if k in trimmed else value]
            last = end
        return "".join(pieces) + match.string[last:match.end()]

    return text.str.replace(regex, trim, regex=True)


def _nanoseconds(column: pd.Series, name: str, like: Column | None = None, source: str | None = None,
                 first_row: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A time column's values as int64 nanoseconds (since 1970-01-01 UTC, or of a duration) and
    its missing cells. Text is read as the time column ``like`` (durations, or dates in its
    format and, without an offset, its time zone), else as dates of any one format; a cell that
    is not one is an error naming it."""
    import pandas as pd

    duration = (pd.api.types.is_timedelta64_dtype(column.dtype) if _is_time(column.dtype)
                else bool(like and like.dtype.startswith("timedelta")))
    if _is_time(column.dtype):
        times = column
    else:
        missing = missing_cells(column)
        text = column.astype(str).str.strip().where(~missing)
        written = strptime_format(like.time_format) if like else ""
        with warnings.catch_warnings():  # pandas' notes on guessed formats and mixed offsets
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            if duration:
                times = pd.to_timedelta(text, errors="coerce")
            else:
                times = read_dates(text, written)
                if not pd.api.types.is_datetime64_any_dtype(times.dtype):  # offsets that differ
                    times = read_dates(text, written, utc=True)
                unread = times.isna().to_numpy() & ~missing
                if written and unread.any() and times.dt.tz is None:  # ISO 8601 is never ambiguous
                    iso = pd.to_datetime(text.where(unread), format="ISO8601", errors="coerce", utc=True)
                    times = times.fillna(iso.dt.tz_localize(None))
        bad = np.flatnonzero(times.isna().to_numpy() & ~missing)
        if len(bad):
            where = position(bad[0], first_row)
            clock = bool(like and like.clock_only)
            what = ("a duration" if duration else f"a time of day written as {_shown(written)}" if clock
                    else "a date" + (f" written as {_shown(written)} (or as 2024-03-01)" if written else ""))
            raise UserError(f"{source or 'data'}: column {name!r} has {text.iloc[bad[0]]!r} at {where}, "
                            f"which is not {what}")
        zone = _zone(like.dtype) if like and not duration else None
        if zone is not None and times.dt.tz is None:  # a time without an offset: the column's zone
            times = times.dt.tz_localize(zone)
    if not duration and times.dt.tz is not None:
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    nanoseconds = times.to_numpy("timedelta64[ns]" if duration else "datetime64[ns]").view(np.int64)
    return nanoseconds, times.isna().to_numpy()


def _time_finding(column: pd.Series, name: str, forced: str | None, written: tuple[str, pd.Series] | None,
                  parsed: dict[str, np.ndarray] | None) -> Finding:
    """The ``Finding`` of a date, time or duration column (``written``: dates read from text, in
    their format): integer, counting the coarsest unit in which every value is whole, from the
    earliest date (or, for a duration, from zero); ``parsed`` receives the counts (see ``detect``)."""
    import pandas as pd

    if forced == "categorical":
        raise UserError(f"column {name!r} holds dates or times, which are learnt as such; leave it "
                        f"out of the categorical columns ({advice({'data.categorical': [name]})})")
    nanoseconds, missing = _nanoseconds(column if written is None else written[1], name)
    present = nanoseconds[~missing]
    unit = next((u for u, size in TIME_UNITS.items() if np.all(present % size == 0)), "us")
    duration = pd.api.types.is_timedelta64_dtype(column.dtype)
    origin = int(present.min()) if len(present) and not duration else 0
    if parsed is not None:
        parsed[name] = np.where(missing, np.nan, (nanoseconds - origin) / TIME_UNITS[unit])
    days = present / TIME_UNITS["D"]
    phases = {} if duration else {period: set(np.floor(days % period / period * 24).astype(int).tolist())
                                  for period in CYCLE_NAMES}
    gaps = np.diff(np.unique(days))
    spacing = float(gaps.min()) if len(gaps) else float("inf")
    # Python dates (a Parquet DATE, read_sql's) come back as dates, not as text in their format.
    dtype = "date" if pd.api.types.infer_dtype(column, skipna=True) == "date" else _dtype_name(column.dtype)
    return Finding(Column(name, "integer", dtype, nullable=bool(missing.any()),
                          time_unit=unit, time_origin="" if duration else pd.Timestamp(origin).isoformat(),
                          time_format=written[0] if written else "", cycles=_covered(phases, spacing)),
                   present=len(present), phases=phases, spacing=spacing)


def _zone(dtype: str) -> Any:
    """The time zone of a time column's dtype; None for naive times and Python dates."""
    import pandas as pd

    return None if dtype == "date" else getattr(pd.api.types.pandas_dtype(dtype), "tz", None)


def _covered(phases: dict[float, set[int]], spacing: float) -> list[float]:
    """The cycles whose phases a date column covers (at least ``CYCLE_PHASES`` of 24 parts) with
    dates closer than half a cycle (``spacing``: the least time between two, in days): dates a
    month or a year apart stand for their month or year, not for a day of the week, although the
    first of each month falls on every weekday in turn."""
    return [period for period, parts in phases.items()
            if len(parts) >= CYCLE_PHASES and 2 * spacing <= period]


GROUP_RUNS_SPREAD = 0.25
"""How unequal (the coefficient of variation of their lengths) the runs of a column counting
runs of rows may be for it to be taken as a group ID: long-format data has about as many rows
per person or group (statsmodels' modechoice: 4 each, spread 0), a table sorted by an ordinal
column has as many rows per value as the data gives it (anes96's income: 10 to 103 rows per
level, spread 0.69), and is data."""


def _counting(values: np.ndarray) -> tuple[str, float] | None:
    """(``rows``, first value) if ``values`` count the rows (one more each row, no gap, at
    least ``IDENTIFIER_ROWS`` rows); (``groups``, first value) if they count runs of rows of
    about equal length (the same or one more each row, at least ``IDENTIFIER_ROWS`` runs,
    ``GROUP_RUNS_SPREAD``: long-format data's person or group ID); (``sorted``, first value) if
    they count runs of unequal length (a column the table is sorted by); else None."""
    if len(values) < IDENTIFIER_ROWS or not np.isfinite(values).all():
        return None
    steps = np.diff(values)
    if np.all(steps == 1):
        return "rows", float(values[0])
    if np.all((steps == 0) | (steps == 1)) and np.count_nonzero(steps) + 1 >= IDENTIFIER_ROWS:
        runs = np.diff(np.flatnonzero(np.r_[True, steps == 1, True]))
        return "groups" if runs.std() <= GROUP_RUNS_SPREAD * runs.mean() else "sorted", float(values[0])
    return None


def finish(findings: Sequence[Finding]) -> list[Column]:
    """The schema of a table's findings: identifiers and saved row numbers refused, labels read
    from text as booleans or integers where all of them are."""
    # A label seen in one row or two cannot be learnt as a category: where more than half the
    # cells hold different values the column is an identifier or free text.
    identifiers = [f.column.name for f in findings if f.text and not f.forced
                   and f.present >= IDENTIFIER_ROWS and 2 * len(f.column.categories) > f.present]
    counters = [f.column.name for f in findings if f.counts in (("rows", 0.0), ("rows", 1.0))]
    groups = [f.column.name for f in findings if f.counts in (("groups", 0.0), ("groups", 1.0))]
    for name in (f.column.name for f in findings if f.counts in (("sorted", 0.0), ("sorted", 1.0))):
        others = [f.column.name for f in findings if f.column.name != name]
        warnings.warn(f"column {name!r} counts up in runs of rows of unequal length (1, 1, 2, 2, 2, ...: "
                      f"the table is sorted by it?), learnt as data; if it is the ID of a person or "
                      f"group, leave it out with {advice({'columns': others})}", stacklevel=2)
    # Refused together, so that the one column list printed leaves every one of them out.
    empty = [f.column.name for f in findings if not f.present] if any(f.present for f in findings) else []
    refused = identifiers + counters + groups + empty
    reasons = ({name: "an identifier?" for name in identifiers}
               | {name: "numbers the rows" for name in counters}
               | {name: "numbers groups of rows" for name in groups} | {name: "no values" for name in empty})
    if refused:
        kept = [f.column.name for f in findings if f.column.name not in refused]
        first = next((f for f in findings if f.column.name == refused[0]), findings[0])
        levels = len(first.column.categories)
        if identifiers and np.mean([is_number(str(label)) for label in first.column.categories]) >= 0.5:
            # A DataFrame's (or Parquet file's) text column of numbers with a word pandas did not
            # read as missing: a CSV's would have been read as numbers.
            raise UserError(f"column {refused[0]!r} holds numbers as text ({levels:,} different values "
                            f"in {first.present:,} rows), which cannot be learnt as labels: convert it to "
                            "numbers (pandas' to_numeric with errors='coerce' makes its words missing "
                            f"cells), or leave it out with {advice({'columns': kept})}")
        what = ("has a different value in every row (an identifier?)"
                if identifiers and levels == first.present
                else f"has {levels:,} different values in {first.present:,} rows (an identifier, or free "
                "text?)" if identifiers
                else "numbers the rows (0, 1, 2, ...: a saved index?)" if counters
                else "numbers groups of rows (1, 1, 2, 2, 2, ...: the ID of a person or group?)" if groups
                else "has no values")
        keep = (f" (or {advice({'data.integer': refused[:1]})} to learn it)"
                if refused[0] in counters + groups
                else f" (or {advice({'data.categorical': refused[:1]})} to learn it as labels)"
                if identifiers and levels < first.present else "")
        others = ", ".join(f"{name!r} ({reasons[name]})" for name in refused[1:])
        if not kept:  # --columns '' would read every column again: nothing is left to suggest
            raise UserError(f"column {refused[0]!r} {what}, which cannot be learnt, and the table has no "
                            f"other column to learn{f': {others}' if others else ''}{keep}")
        raise UserError(
            f"column {refused[0]!r} {what}, which cannot be learnt: leave it out with "
            f"{advice({'columns': kept})}{keep}" + (f" (it leaves out too: {others})" if others else "")
        )
    for f in findings:  # numbers declared labels, nearly one per row: the user's call, but said
        labels = f.column.categories
        if (f.forced and f.present >= IDENTIFIER_ROWS and 2 * len(labels) > f.present
                and np.mean([is_number(str(label)) for label in labels]) >= 0.5):
            warnings.warn(f"column {f.column.name!r} is declared categorical but has {len(labels):,} "
                          f"different numbers in {f.present:,} rows: each is a label of its own, which "
                          "samples can only repeat (a measurement is learnt better as a number)",
                          stacklevel=2)
    schema = []
    for finding in findings:
        column, labels = finding.column, finding.column.categories
        if finding.text and labels and {str(label).lower() for label in labels} <= {"true", "false"}:
            column = replace(column, categories=sorted({str(v).lower() == "true" for v in labels}),
                             dtype="bool")
        elif (finding.text and labels and all(_INTEGER_TEXT.match(str(label)) for label in labels)
              and not any(re.match(r"[+-]?0\d", str(label)) for label in labels)):  # "007" stays text
            column = replace(column, categories=sorted({int(v) for v in labels}), dtype="int64")
        schema.append(column)
    return schema


def _is_text(column: pd.Series) -> bool:
    import pandas as pd

    return column.dtype == object or pd.api.types.is_string_dtype(column.dtype)


def _holds_decimals(column: pd.Series) -> bool:
    """Whether a column holds Python ``Decimal`` numbers (a database's NUMERIC through pandas'
    ``read_sql``, a Parquet DECIMAL): numbers, although their dtype is ``object``."""
    import pandas as pd

    return column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) == "decimal"


def missing_cells(column: pd.Series) -> np.ndarray:
    """Where a column's cells are missing: NaN, or text in ``MISSING_TOKENS``."""
    if _is_text(column):
        cells = column.astype(str).str.strip().str.lower()
        return (column.isna() | cells.isin(MISSING_TOKENS)).to_numpy()
    return column.isna().to_numpy()


_DECIMAL_COMMA = re.compile(r"^[-+]?(\d+|\d{1,3}(\.\d{3})+),\d+$")
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(,\d{3})+(\.\d+)?$")


_FORTRAN_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)[dD][-+]?\d+\s*$")
"""A number with Fortran's double-precision exponent (``1.257302D+01``), as its programs print."""
_CENSORED = re.compile(r"^([<>≤≥]=?\s*[-+]?\.?\d|\d[\d.,]*\s*\+$)")
"""A value beyond a limit: under a detection limit (``<0.01``), over a range (``>100``), top-coded
(an age of ``90+``)."""


def _number_hint(cell: str) -> str | None:
    """Why a cell that is not a number looks like one: a decimal comma (1234,5), a thousands
    separator (1,234.5), or either (1,234 or 1.234,5), written unlike the column's other numbers;
    a value beyond a detection limit (<0.01); None if it does not."""
    if _CENSORED.match(cell):
        return ("a value beyond a detection limit or a top code? write a number, or leave the cell empty "
                "to learn it as missing")
    decimal, thousands = bool(_DECIMAL_COMMA.match(cell)), bool(_THOUSANDS.match(cell))
    if decimal and (thousands or "." in cell):
        return "a decimal comma or thousands separators? write the column's numbers all one way"
    if decimal:
        return "a decimal comma? write the column's numbers all one way"
    return "a thousands separator? write the column's numbers all one way" if thousands else None


def _parsed(text: pd.Series) -> np.ndarray:
    """The cells of ``text`` as the float64 numbers they name, to the last bit (NaN where a cell
    is not a number), so that a user's 17-digit cells are written back as read. Arrow parses a
    column of plain numbers exactly in one pass; pandas' ``to_numeric`` finds the numbers among
    gaps, words and spaces around them, but rounds about a third of 17-digit cells to a
    neighbouring float, so those it finds are parsed again by Python's rules; a column whose
    first word is a Fortran number (``1.2D+03``) has those read too."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.cast(pa.array(text.to_numpy(), type=pa.string()), pa.float64()).to_numpy()
    except pa.ArrowInvalid:  # not every cell a plain number: on a million rows the reading's cost
        values = pd.to_numeric(text, errors="coerce").to_numpy(np.float64)
    found = np.flatnonzero(~np.isnan(values))
    with contextlib.suppress(ValueError):  # a spelling pandas reads and Python does not: pandas'
        values[found] = text.iloc[found].astype(np.float64).to_numpy()
    unread = np.flatnonzero(np.isnan(values))
    cells = text.iloc[unread]
    gaps = MISSING_TOKENS | NUMBER_GAPS
    first = next((cell for cell in cells.iloc[:100] if cell.strip().lower() not in gaps), "")
    if _FORTRAN_NUMBER.match(first):  # the first word says: a column of labels pays nothing more
        fortran = cells.str.match(_FORTRAN_NUMBER).to_numpy()
        values[unread[fortran]] = cells[fortran].str.replace(r"[dD]", "e", regex=True).astype(np.float64)
    return values


def _numbers_of_text(column: pd.Series, name: str, forced: str | None, first_row: int | None,
                     source: str | None = None, like: Column | None = None) -> _Numbers | None:
    """A text column as numbers if every present cell is one, plain or written one way with a
    currency sign or unit, thousands separators or a decimal comma (``_written``); None if it is
    text. A column of numbers with a few words, or one declared numeric, is an error naming the
    first bad cell (by its line in a file whose first row is on line ``first_row``, else by row);
    ``source`` names rows read for the trained column ``like``, whose way of writing them is taken
    beside plain numbers."""
    import pandas as pd

    text = column.astype(str)
    values = _parsed(text)
    unparsed = np.flatnonzero(np.isnan(values))
    odd = text.iloc[unparsed].str.strip()
    words = ~odd.str.lower().isin(MISSING_TOKENS | NUMBER_GAPS).to_numpy()
    if not words.any():
        return None if forced == "categorical" else _Numbers(values)
    if forced == "categorical":
        return None
    # Written numbers: every present cell in one way (a trained column's way, or plain); the first
    # word decides for a column of labels, that it pays for no more.
    written = None
    if _WRITTEN_NUMBER.match(_ACCOUNTING.sub(r"\g<before>\g<inside>\g<after>", odd[words].iloc[0])):
        cells = text.str.strip() if like is None else odd[words]
        codes, distinct = pd.factorize(cells.where(~cells.str.lower().isin(MISSING_TOKENS)))
        written = _written(list(distinct), like)
    if written is not None:
        read = np.append(written.values, np.nan)[codes]  # code -1 (a missing cell): NaN
        if like is None:
            return replace(written, values=read)
        values[unparsed[words]] = read
        return _Numbers(values)
    numbers = pd.unique(text.to_numpy()[~np.isnan(values)])
    distinct = set(odd[words].unique()) | {str(cell).strip() for cell in numbers}
    # Numbers written with a decimal comma or thousands separators in more than one way count as
    # numbers: such a column is an error to fix, not a column of labels (nor an identifier).
    # (A censored value, "<0.01" or "65+", does not: a column of only those is labels, "18+".)
    looks_numeric = [is_number(cell) or (_number_hint(cell) is not None and not _CENSORED.match(cell))
                     for cell in distinct]
    numeric_share = np.mean(looks_numeric) if len(distinct) else 0.0
    if forced in ("numeric", "integer") or numeric_share >= 0.5:
        row, cell = int(unparsed[words][0]), odd[words].iloc[0]
        found = f"column {name!r} has a non-numeric value {cell!r} at {position(row, first_row)}"
        hint = _number_hint(cell)
        if like is not None and (like.number_format or (hint and not _CENSORED.match(cell))):
            found += f" (its numbers are written as {_example(like) if like.number_format else '1234.5'})"
        elif hint:
            found += f" ({hint})"
        if source is not None:
            raise UserError(f"{source}: {found}, where the model takes numbers")
        raise UserError(f"{found}: fix the cell, or learn the column as labels with "
                        f"{advice({'data.categorical': [name]})}")
    return None


@dataclass
class _Numbers:
    """A text column read as numbers, and how they were written (``Column.number_format``)."""

    values: np.ndarray
    number_format: str = ""
    number_marks: str = ""


_CURRENCIES = "$€£¥₹₩₽¢"
_SEPARATORS = ",. '\u00a0\u202f"
"""Thousands separators: a comma or a point (whichever is not the decimal mark), a space (French,
also the no-break ones spreadsheets write) or an apostrophe (Swiss)."""
_WRITTEN_NUMBER = re.compile(
    rf"^(?P<sign>[-+\u2212]?)(?P<prefix>[A-Z]{{0,3}}[{_CURRENCIES}] ?|[A-Z]{{3}} )?(?P<inner>[-+\u2212]?)"
    rf"(?P<body>\d(?:[\d{_SEPARATORS}]*\d)?)(?P<suffix> ?[^\d\s.,+-][^\d\s]{{0,7}})?$")
"""A number with a currency sign or code before it (``$``, ``US$``, ``EUR `` with its space: a code
such as ``SKU001`` is no amount) or a unit after it (``%``, `` kg``, ``°C``), its digits grouped
or not, its decimal mark a point or a comma."""


_ACCOUNTING = re.compile(r"^(?P<before>[^()\d+\-\u2212]*)\((?P<inside>[^()]*\d[^()]*)\)(?P<after>[^()\d]*)$")
"""An accountant's negative number, in parentheses around it or around its digits after a
currency sign: ``(1,234.50)``, ``($5.00)``, ``$(5.00)``."""


def _written(cells: list[str], like: Column | None = None) -> _Numbers | None:
    """The distinct ``cells`` of a column as numbers, if all are written one way (the trained
    column ``like``'s, where given, or plain): with the same currency sign or unit, one decimal
    mark (the one a cell shows unambiguously: ``1,5``, ``1,234.5``; else a point), and groups of
    three digits between thousands separators; negatives with a minus sign, or all in
    parentheses placed one way (an accountant's ``(5.00)``, ``($5.00)`` or ``$(5.00)``). None if
    they are not."""
    matches, bracketed, placements = [], [], set()
    for cell in cells:
        accounting = _ACCOUNTING.match(cell)
        if accounting:
            placements.add(bool(accounting["before"]))  # around the digits, after a currency sign
            cell = accounting["before"] + accounting["inside"] + accounting["after"]
        if not (match := _WRITTEN_NUMBER.match(cell)):
            return None
        matches.append(match)
        bracketed.append(bool(accounting))
    affixes = {(m["prefix"] or "", m["suffix"] or "") for m in matches}
    if like is None:
        if len(affixes) > 1:
            return None
        mark = _decimal_mark([m["body"] for m in matches])
    else:  # the trained column's way, or plain numbers
        prefix, _, suffix = _template_parts(like)
        if not affixes <= {("", ""), (prefix, suffix)}:
            return None
        mark = (like.number_marks or ",.")[1]
    if mark is None:
        return None
    # Parentheses placed one way, never beside a minus sign, and numbers outside them too: a
    # column of "(1)", "(2)" alone is more likely labels than all negative amounts.
    if any(bracketed) and (len(placements) > 1 or (all(bracketed) and like is None)
                           or any(m["sign"] or m["inner"] for m in matches)):
        return None
    values, places, separators = [], 0, set()
    for m, negative in zip(matches, bracketed):
        whole, _, fraction = m["body"].partition(mark)
        if not (fraction.isdigit() or mark not in m["body"]):
            return None
        if len(whole) > 1 and whole.startswith("0"):  # "SKU 007", "$05": a code, not an amount
            return None
        grouping = "".join(set(whole) - set("0123456789"))
        groups = rf"\d{{1,3}}({re.escape(grouping)}\d{{3}})+"
        if len(grouping) > 1 or (grouping and not re.fullmatch(groups, whole)):
            return None
        separators |= set(grouping)
        places = max(places, len(fraction))
        minus = negative or {"-", "\u2212"} & set(m["sign"] + m["inner"])  # a typographic minus too
        sign = -1.0 if minus else 1.0
        values.append(sign * float(f"{re.sub('[^0-9]', '', whole)}.{fraction or 0}"))
    allowed = {(like.number_marks or ",.")[0]} if like is not None else set(_SEPARATORS) - {mark}
    if len(separators) > 1 or not separators <= allowed:
        return None
    grouped = "," if separators else ""
    separator = separators.pop() if separators else "." if mark == "," else ","
    prefix, suffix = affixes.pop() if like is None else ("", "")
    marks = "" if separator + mark == ",." else separator + mark
    number = f"{{:{grouped}.{places}f}}"
    template = f"{prefix}{number}{suffix}"
    if any(bracketed) and like is None:  # a negative section, as a spreadsheet's format has one
        template += f";{prefix}({number}){suffix}" if placements.pop() else f";({template})"
    return _Numbers(np.array(values), template, marks)


def _decimal_mark(bodies: list[str]) -> str | None:
    """The decimal mark of numbers written with points or commas: the one every body that shows
    it agrees on (the last of two kinds of mark, or a single mark not followed by three digits;
    "1,234,567" says points), a point where none does (English "1,234"); None if bodies disagree."""
    votes = set()
    for body in bodies:
        commas, points = body.count(","), body.count(".")
        if commas and points:
            votes.add(body[max(body.rfind(","), body.rfind("."))])
        elif commas > 1 or points > 1:
            votes.add("." if commas else ",")
        elif commas or points:
            mark = "," if commas else "."
            if len(body) - body.index(mark) - 1 != 3:
                votes.add(mark)
    return (votes.pop() if votes else ".") if len(votes) <= 1 else None


def _template_parts(column: Column, negative: bool = False) -> tuple[str, str, str]:
    """A number format's text before the number, its ``format`` spec, and its text after: of
    its negative section (``$({:,.2f})`` in ``${:,.2f};$({:,.2f})``) with ``negative``, where it
    has one, else of its first."""
    sections = column.number_format.split(";")
    prefix, _, rest = sections[-1 if negative else 0].partition("{")
    spec, _, suffix = rest.partition("}")
    return prefix, spec.removeprefix(":"), suffix


def written_numbers(values: np.ndarray, column: Column) -> np.ndarray:
    """``values`` written as the column's numbers were (``Column.number_format``; the sign before
    a currency sign, ``-$5.00``, or its negative section, ``($5.00)``), NaN as a missing cell
    (None)."""
    parts = {sign: _template_parts(column, negative=sign) for sign in (False, True)}
    minus = "" if ";" in column.number_format else "-"
    out = np.full(len(values), None, dtype=object)
    marks = column.number_marks
    marks = str.maketrans({",": marks[0], ".": marks[1]}) if marks else None
    for i in np.flatnonzero(~np.isnan(values)):
        number = format(abs(values[i]), parts[False][1])
        negative = values[i] < 0 and float(number.replace(",", "")) != 0  # no "-0.00"
        prefix, _, suffix = parts[negative]
        out[i] = f"{minus if negative else ''}{prefix}{number.translate(marks) if marks else number}{suffix}"
    return out


def as_written(frame: pd.DataFrame, schema: Sequence[Column]) -> pd.DataFrame:
    """``frame`` with the numbers of columns read from text in a way of their own
    (``Column.number_format``) written that way, for a text file."""
    import pandas as pd

    written = {column.name: written_numbers(frame[column.name].to_numpy(np.float64, na_value=np.nan), column)
               for column in schema if column.number_format and column.name in frame.columns
               and pd.api.types.is_numeric_dtype(frame[column.name].dtype)}
    return frame.assign(**written) if written else frame


def _padded(column: pd.Series, values: np.ndarray) -> str | None:
    """How a text column of whole numbers is written: ``""`` plainly, ``"{:05.0f}"`` zero-padded
    to five digits (postcodes, "07" hours: every cell as wide, some with a leading zero); None if
    its numbers are not all written whole ("7", not "7.0" or "1e3"): their values first, then the
    text of each distinct one."""
    import pandas as pd

    present = ~np.isnan(values)
    if not np.all(np.isfinite(values[present]) & (values[present] == np.round(values[present]))):
        return None
    cells = {str(cell).strip() for cell in pd.unique(column.to_numpy()[present])}
    if not all(_INTEGER_TEXT.match(cell) for cell in cells):
        return None
    widths = {len(cell) for cell in cells}
    if len(widths) == 1 and min(widths) > 1 and any(cell.startswith("0") for cell in cells):
        return f"{{:0{widths.pop()}.0f}}"
    return ""


def _as_numbers(column: pd.Series, name: str, first_row: int | None, source: str | None = None,
                like: Column | None = None) -> np.ndarray:
    import pandas as pd

    if _is_text(column):
        numbers = _numbers_of_text(column, name, "numeric", first_row, source, like)
        return numbers.values if numbers is not None else np.full(len(column), np.nan)
    if pd.api.types.is_bool_dtype(column.dtype) or isinstance(column.dtype, pd.CategoricalDtype):
        raise UserError(f"column {name!r} ({column.dtype}) cannot be read as numbers; "
                        "leave it categorical")
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return bool(_FORTRAN_NUMBER.match(cell))
    return True


def _labels(column: pd.Series) -> list[Any]:
    """The labels of a categorical column as plain Python values, in a stable order."""
    import pandas as pd

    if isinstance(column.dtype, pd.CategoricalDtype):
        return [_plain(v) for v in column.cat.categories]
    present = column[~missing_cells(column)]
    if _is_text(column):
        present = present.astype(str).str.strip()
    return _ordered({_plain(v) for v in present.unique()})


def _ordered(labels: set) -> list[Any]:
    try:
        return sorted(labels)
    except TypeError:  # labels of several types: order by their text
        return sorted(labels, key=str)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def to_values(frame: pd.DataFrame, schema: Sequence[Column], source: str = "data",
              parsed: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The float matrix of ``frame`` for ``schema``: values, category codes, NaN where missing
    (``parsed``: numbers already read from text columns, from ``detect``).

    A label that the schema does not know is an error naming it (a model cannot produce or
    score a category it never saw).
    """
    out = np.empty((len(frame), len(schema)), dtype=np.float64)
    for j, column in enumerate(schema):
        if column.name not in frame.columns:
            raise UserError(f"{source}: no column {column.name!r}")
        series = frame[column.name]
        known = (parsed or {}).get(column.name)
        if column.time_unit:
            out[:, j] = (known if known is not None
                         else _time_counts(series, column, source, frame.attrs.get("first_row")))
            continue
        if column.kind != "categorical":
            out[:, j] = (known if known is not None
                         else _as_numbers(series, column.name, frame.attrs.get("first_row"), source, column))
            continue
        missing = missing_cells(series)
        present = series[~missing]
        if _is_text(series):
            present = present.astype(str).str.strip()
        index = {label: code for code, label in enumerate(column.categories)}
        if _is_text(series) and not all(isinstance(label, str) for label in column.categories):
            # Labels that are numbers or booleans, read from text (a CSV): match their spelling.
            index |= {str(label).lower(): code for code, label in enumerate(column.categories)}
            present = present.str.lower()
        codes = np.full(len(series), np.nan)
        looked_up = [index.get(_plain(v)) for v in present]
        unknown = [v for v, code in zip(present, looked_up) if code is None]
        if unknown:
            more = ", ..." if len(column.categories) > 8 else ""
            known = ", ".join(map(str, column.categories[:8])) + more
            hint = did_you_mean(unknown[0], column.categories)
            raise UserError(f"{source}: column {column.name!r} has the label {unknown[0]!r}, which "
                            f"the model never saw (it knows {known}){hint}")
        codes[~missing] = looked_up
        out[:, j] = codes
    return out


def _time_counts(series: pd.Series, column: Column, source: str, first_row: int | None) -> np.ndarray:
    """A time column's cells as the units they count from its origin (NaN where missing)."""
    import pandas as pd

    if series.isna().all():  # not given (a condition), or a column of gaps
        return np.full(len(series), np.nan)
    if isinstance(series.dtype, pd.PeriodDtype):
        series = series.dt.start_time
    duration = column.dtype.startswith("timedelta")
    if not _is_text(series) and (not _is_time(series.dtype)
                                 or pd.api.types.is_timedelta64_dtype(series.dtype) != duration):
        what = "durations" if duration else "dates"
        raise UserError(f"{source}: column {column.name!r} holds {series.dtype} values, where the model "
                        f"takes {what}")
    nanoseconds, missing = _nanoseconds(series, column.name, column, source, first_row)
    origin = _origin(column)
    counts = (nanoseconds - origin) / TIME_UNITS[column.time_unit]
    return np.where(missing, np.nan, counts)


def _origin(column: Column) -> int:
    """The nanoseconds (since 1970-01-01 UTC) a time column's values count from."""
    import pandas as pd

    return pd.Timestamp(column.time_origin).value if column.time_origin else 0


def _times(values: np.ndarray, column: Column) -> pd.Series:
    """Counts of a time column's unit from its origin as its dates, times or durations, in its
    dtype (text in its format for dates read from text); NaN gives a missing cell."""
    import pandas as pd

    origin, unit = _origin(column), TIME_UNITS[column.time_unit]
    # Whole units in 64-bit integers (float64 nanoseconds near 2024 are 256 ns apart), within
    # what they hold (years 1677-2262): a sample is kept in the training range anyway, and the
    # bound only keeps a stray one from overflowing.
    reach = (np.iinfo(np.int64).max - abs(origin)) // unit
    missing = np.isnan(values)
    counts = np.clip(np.round(np.where(missing, 0, values)), -reach, reach).astype(np.int64)
    whole = origin + counts * unit
    if column.dtype.startswith("timedelta"):
        times = pd.Series(whole.view("timedelta64[ns]")).mask(missing)
        return times.astype(column.dtype)
    times = pd.Series(whole.view("datetime64[ns]")).mask(missing)
    if column.dtype == "date":
        return times.dt.date.astype(object).where(~missing, None)
    if column.time_format:
        text = _strftime(times, column.time_format).astype(object).where(~missing, np.nan)
        return text if column.dtype in ("object", "O") else text.astype(column.dtype)
    zone = _zone(column.dtype)
    if zone is not None:
        times = times.dt.tz_localize("UTC").dt.tz_convert(zone)
    return times.astype(column.dtype)


def format_value(column: Column, value: float) -> str:
    """One value of a column's matrix as a person reads it: a label, a number, or a date or
    duration."""
    if column.kind == "categorical":
        return str(column.categories[int(value)])
    if column.number_format:
        return str(written_numbers(np.array([value]), column)[0])
    if not column.time_unit:
        return f"{value + 0.0:g}"  # no "-0"
    time = _times(np.array([value]), column).iloc[0]  # dates read from text: in their format
    whole_days = column.time_unit == "D" and not column.time_format and "," not in column.dtype
    return str(time.date()) if whole_days and column.time_origin else str(time)


def days_since_1970(column: Column, values: np.ndarray) -> np.ndarray:
    """A date or time column's values as days since 1970-01-01 (matplotlib's dates)."""

    origin = _origin(column)
    return (origin + values * TIME_UNITS[column.time_unit]) / TIME_UNITS["D"]


def to_frame(values: np.ndarray, schema: Sequence[Column]) -> pd.DataFrame:
    """The DataFrame of a matrix from ``to_values`` (or the model): labels and dtypes restored.

    Integer columns come back as whole numbers (pandas' nullable ``Int64`` where cells are
    missing), categorical ones with their labels (a pandas category keeps its category list);
    numbers read from text written with a currency sign, separators or zeros are numbers here,
    and written so in a text file (``as_written``).
    """
    import pandas as pd

    data = {}
    for j, column in enumerate(schema):
        v = values[:, j]
        missing = np.isnan(v)
        if column.time_unit:
            data[column.name] = _times(v, column)
        elif column.kind == "numeric":
            data[column.name] = pd.Series(v).astype(_float_dtype(column.dtype))
        elif column.kind == "integer":
            whole = np.round(v)
            if column.nullable or missing.any():
                data[column.name] = pd.array([None if m else int(w) for m, w in zip(missing, whole)],
                                             dtype="Int64")
            else:
                dtype = column.dtype if _is_int_dtype(column.dtype) else "int64"
                data[column.name] = pd.Series(whole).astype(dtype)
        else:
            data[column.name] = _labelled(v, missing, column)
    return pd.DataFrame(data)


def _labelled(codes: np.ndarray, missing: np.ndarray, column: Column):
    import pandas as pd

    nullable = column.nullable or missing.any()
    labels = np.empty(len(codes), dtype=object)
    labels[missing] = None
    labels[~missing] = [column.categories[int(c)] for c in codes[~missing]]
    dtype = column.dtype
    if dtype in ("category", ORDERED_CATEGORY):
        return pd.Categorical(labels, categories=column.categories, ordered=dtype == ORDERED_CATEGORY)
    if dtype in ("bool", "boolean"):
        return pd.array(labels, dtype="boolean") if nullable else labels.astype(bool)
    if _is_int_dtype(dtype):
        return pd.array(labels, dtype="Int64") if nullable else labels.astype(dtype)
    if dtype.startswith("float"):
        return np.where(missing, np.nan, labels).astype(dtype)
    series = pd.Series(labels, dtype=object)
    if dtype not in ("object", "O"):
        series = series.astype(dtype)
    if missing.any() and dtype in ("object", "O"):
        series[missing] = np.nan
    return series


ORDERED_CATEGORY = "ordered category"
"""The dtype name of a pandas category whose labels are ordered (``str`` calls both "category")."""


def _dtype_name(dtype: Any) -> str:
    """The name that gives ``dtype`` back: pandas writes its pyarrow-backed strings as plain
    ``string``, which would come back stored in Python objects."""
    import pandas as pd

    if isinstance(dtype, pd.StringDtype) and dtype.storage != "python":
        return f"string[{dtype.storage}]"
    if isinstance(dtype, pd.CategoricalDtype) and dtype.ordered:
        return ORDERED_CATEGORY
    return str(dtype)


def _is_int_dtype(dtype: str) -> bool:
    return dtype.lower().lstrip("u").startswith("int")


def _float_dtype(dtype: str) -> str:
    """``dtype`` where it is a float type pandas knows here (float32, its nullable ``Float64``,
    pyarrow's ``double[pyarrow]``), else float64 (an integer column learnt as numbers)."""
    import pandas as pd

    try:
        return dtype if pd.api.types.is_float_dtype(pd.api.types.pandas_dtype(dtype)) else "float64"
    except (TypeError, ImportError):  # a dtype of a library this machine lacks
        return "float64"


def from_states(states: Sequence[dict[str, Any]]) -> list[Column]:
    """The schema from ``[column.state(), ...]``."""
    try:
        return [Column(**state | {"categories": [_label_of_state(label) for label in state["categories"]]})
                for state in states]
    except (TypeError, ValueError, KeyError) as exc:
        raise UserError(f"the model file's column description is unreadable ({exc})") from None


def _label_state(label: Any) -> Any:
    """A category label as JSON: text, numbers and booleans as they are; the labels pandas'
    categoricals hold besides (``pd.cut``'s intervals, timestamps, periods, durations) tagged."""
    import pandas as pd

    if isinstance(label, pd.Interval):
        return {"interval": [_label_state(_plain(label.left)), _label_state(_plain(label.right))],
                "closed": label.closed}
    if isinstance(label, pd.Timestamp):
        return {"timestamp": label.isoformat()}
    if isinstance(label, pd.Period):
        return {"period": str(label), "freq": label.freqstr}
    if isinstance(label, pd.Timedelta):
        return {"timedelta": label.value}
    return label


def _label_of_state(state: Any) -> Any:
    """The label ``_label_state`` wrote."""
    import pandas as pd

    if not isinstance(state, dict):
        return state
    if "interval" in state:
        left, right = (_label_of_state(end) for end in state["interval"])
        return pd.Interval(left, right, closed=state["closed"])
    if "timestamp" in state:
        return pd.Timestamp(state["timestamp"])
    if "period" in state:
        return pd.Period(state["period"], freq=state["freq"])
    return pd.Timedelta(state["timedelta"])
