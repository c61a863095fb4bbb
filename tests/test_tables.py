"""Mixed-type tables: column kinds, the table encoder's round trip, DataFrames in and out, missing
cells learnt with their dependence on other columns, the data-sized budget, tabular metrics."""

from __future__ import annotations

import json
import re
import warnings
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import cli

import simple_diffusion as sd
from simple_diffusion import UserError, build, config
from simple_diffusion.config import ModelConfig
from simple_diffusion.data import io, tables
from simple_diffusion.data.columns import (
    Column,
    describe,
    detect,
    find,
    from_states,
    strptime_format,
    to_frame,
    to_values,
)
from simple_diffusion.errors import command_line
from simple_diffusion.evaluation import plots, tabular
from simple_diffusion.training import budget


def mixed_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    kind = rng.choice(["a", "b", "c"], n)
    frame = pd.DataFrame({
        "mass": rng.normal(size=n) + (kind == "b") * 3,
        "count": rng.poisson(3, n),
        "kind": kind,
        "flag": rng.random(n) < 0.5,
        "grade": pd.Categorical(rng.choice(["low", "high"], n), categories=["low", "high"]),
    })
    frame.loc[rng.random(n) < 0.1, "mass"] = np.nan
    frame.loc[rng.random(n) < 0.1, "kind"] = None
    return frame


# -- kinds ----------------------------------------------------------------------------------

def test_kinds_follow_dtypes_and_overrides():
    frame = mixed_frame()
    schema = detect(frame)
    assert [c.kind for c in schema] == ["numeric", "integer", "categorical", "categorical", "categorical"]
    assert schema[0].nullable and not schema[1].nullable and schema[2].nullable
    assert schema[4].categories == ["low", "high"]  # a pandas category keeps its order
    forced = detect(frame, categorical=["count"], numeric=[])
    assert forced[1].kind == "categorical" and forced[1].categories == sorted(frame["count"].unique())
    with pytest.raises(UserError, match="declared both categorical and numeric"):
        detect(frame, categorical=["mass"], numeric=["mass"])
    with pytest.raises(UserError, match=r"^data\.categorical names column 'nope', which the data lacks "
                                        r"\(columns: mass, count, kind, flag, grade\)$"):
        detect(frame, categorical=["nope"])
    with command_line(), pytest.raises(UserError, match=r"^--categorical names column 'nope'"):
        detect(frame, categorical=["nope"])


def test_bounds_on_a_categorical_column_say_so(tmp_path, capsys):
    """`--bounds kind=0:1` said the data lacked 'kind' (the encoder of numbers was asked)."""
    frame = mixed_frame(100)[["mass", "kind"]].dropna()
    with pytest.raises(UserError, match=r"^data\.bounds names column 'kind', which is categorical "
                                        r"\(it takes mass\)$"):
        sd.fit(frame, config={"data": {"bounds": "kind=0:1"}}, steps=2, progress=False, verbose=False)
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert cli(["train", str(tmp_path / "run"), "--data", str(tmp_path / "t.csv"), "--bounds",
                "kind=0:1"]) == 1
    assert capsys.readouterr().err.strip() == ("error: --bounds names column 'kind', which is categorical "
                                               "(it takes mass)")


TIME_COLUMNS = {
    "day": (pd.Series(pd.to_datetime(["2021-03-01", None, "2020-12-30", "2021-01-02"])), "datetime in days"),
    "hour": (pd.Series(pd.to_datetime(["2023-03-25 22:00", "2023-03-26 03:00", "2023-03-26 01:00",
                                       "2023-03-27 00:00"]).tz_localize("Europe/Paris")),
             "datetime in hours"),
    "second": (pd.Series(pd.to_datetime(["2020-01-01 10:00:01", "2020-01-01 10:00:00", None,
                                         "1960-05-01 00:00:07"]).astype("datetime64[s]")),
               "datetime in seconds"),
    "micro": (pd.Series(pd.to_datetime(["2024-01-05 13:45:10.000001", "2024-06-01 00:00:00", None,
                                        "2024-01-05 13:45:10.000003"], format="ISO8601")),
              "datetime in microseconds"),  # whole microseconds near 2024: beyond float64 nanoseconds
    "took": (pd.Series(pd.to_timedelta(["1.5s", "2s", None, "0s"])), "duration in milliseconds"),
    "written": (pd.Series(["25/12/2020", "01/02/2021", None, "13/01/2021"], dtype=object),
                "datetime in days (%d/%m/%Y)"),
    "month": (pd.Series(["2020-01", "2021-11", "2020-03", "2020-01"], dtype="string"),
              "datetime in days (%Y-%m)"),
}
"""Date, time and duration columns: each counts the coarsest unit in which all its values are
whole (a time zone's midnights are not whole days in UTC, and two around its clock change are
23 hours apart); dates written as text, day first where a day past 12 says so, keep their format."""


@pytest.mark.parametrize("name", TIME_COLUMNS)
def test_dates_times_and_durations_round_trip_counting_their_unit(name):
    column, described = TIME_COLUMNS[name]
    frame = pd.DataFrame({name: column, "z": [0.1, 0.2, 0.3, 0.4]})
    schema = detect(frame)
    assert describe(schema[:1]) == f"{name} {described}" and schema[0].kind == "integer"
    values = to_values(frame, schema)
    assert np.nanmin(values[:, 0]) == 0 or name == "took"  # counted from the earliest
    assert np.array_equal(values[:, 0], np.round(values[:, 0]), equal_nan=True)
    back = to_frame(values, schema)
    expected = frame.fillna({name: np.nan}) if column.dtype == object else frame  # missing text: NaN
    pd.testing.assert_frame_equal(back, expected)
    # Samples between the grid's points come back on it, in the column's dtype.
    between = to_frame(values + 0.3, schema)
    pd.testing.assert_series_equal(between[name], expected[name])


def test_text_dates_are_read_from_a_csv_and_a_given_date_is_read_in_the_columns_zone(tmp_path):
    path = tmp_path / "t.csv"
    days = pd.date_range("2020-01-01", periods=40, freq="3D")  # a different date in every row
    frame = pd.DataFrame({"when": days.strftime("%d.%m.%Y"), "x": np.linspace(0, 1, 40) ** 2})
    frame.to_csv(path, index=False)
    table = io.read_table(str(path))
    assert table.schema[0].time_format == "%d.%m.%Y" and table.values[:, 0].tolist() == list(range(0, 120, 3))
    with pytest.raises(UserError, match=r"t.csv: column 'when' has '30.02.2020' at line 2, which is not a "
                                        r"date written as %d.%m.%Y \(01.03.2024\) \(or as 2024-03-01\)"):
        to_values(_with_first_row(pd.DataFrame({"when": ["30.02.2020"], "x": [1.0]})), table.schema, "t.csv")
    iso = to_values(pd.DataFrame({"when": ["2020-01-04", "04.01.2020"], "x": [1.0, 1.0]}), table.schema)
    assert iso[:, 0].tolist() == [3.0, 3.0]  # ISO 8601 beside the column's own format
    zoned = detect(pd.DataFrame({"t": TIME_COLUMNS["hour"][0]}))
    given = to_values(pd.DataFrame({"t": ["2023-03-26 03:00", "26 March 2023 4:00"]}), zoned)
    assert given[:, 0].tolist() == [4.0, 5.0]  # 03:00 in Paris (summer time): 4 hours after 22:00
    given = to_values(pd.DataFrame({"t": ["2023-03-25T21:00:00Z", "2023-03-26 03:00+02:00"]}), zoned)
    assert given[:, 0].tolist() == [0.0, 4.0]
    with pytest.raises(UserError, match="column 't' has 'banana' at row 0, which is not a duration"):
        to_values(pd.DataFrame({"t": ["banana"]}), detect(pd.DataFrame({"t": TIME_COLUMNS["took"][0]})))
    with pytest.raises(UserError, match="column 't' holds float64 values, where the model takes dates"):
        to_values(pd.DataFrame({"t": [1.5]}), zoned)


def test_dates_written_as_eight_digits_are_dates_unless_declared_integer_and_come_back_so(tmp_path):
    """A bank's or a database's 20240301 is a date when every cell is one (a column of other
    eight-digit numbers, or of dates with one that is not, stays whole numbers); --integer keeps
    it a number; samples come back in the same eight digits."""
    path = tmp_path / "t.csv"
    days = pd.date_range("2023-12-20", periods=40, freq="D")
    ids = np.random.default_rng(0).integers(10_000_000, 99_999_999, 40)
    frame = pd.DataFrame({"booked": days.strftime("%Y%m%d"), "id": ids, "x": np.linspace(0, 1, 40)})
    frame.to_csv(path, index=False)
    table = io.read_table(str(path))
    assert [c.kind_name for c in table.schema] == ["datetime in days", "integer", "numeric"]
    assert table.schema[0].time_format == "%Y%m%d" and table.values[:, 0].tolist() == list(range(40))
    assert io.read_table(str(path), kinds={"integer": ["booked"]}).schema[0].kind_name == "integer"
    written = tmp_path / "out.csv"
    io.write_table(str(written), to_frame(table.values, table.schema), schema=table.schema)
    assert written.read_text().splitlines()[1].startswith("20231220,")
    path.write_text("booked,x\n20240301,1.5\n20240302,2.5\n20241301,0.5\n")  # no thirteenth month
    assert io.read_table(str(path)).schema[0].kind_name == "integer"
    # A month written 202403 (a statistics office's), beside six-digit incomes, which stay numbers.
    months = pd.date_range("2015-01-01", periods=40, freq="MS")
    incomes = np.random.default_rng(1).integers(100_000, 999_999, 40)
    pd.DataFrame({"month": months.strftime("%Y%m"), "income": incomes}).to_csv(path, index=False)
    table = io.read_table(str(path))
    assert [c.kind_name for c in table.schema] == ["datetime in days", "integer"]
    assert table.schema[0].time_format == "%Y%m"
    assert to_frame(table.values, table.schema)["month"].tolist() == months.strftime("%Y%m").tolist()


@pytest.mark.parametrize("written, example", [("%YQ%q", "1999Q4"), ("%Y-Q%q", "1999-Q4"),
                                              ("Q%q %Y", "Q4 1999"), ("%Yq%q", "1999q4")])
def test_quarters_are_dates_learnt_with_their_season_and_come_back_as_quarters(tmp_path, written, example):
    """An economist's 1960Q1 (pandas' Period, Eurostat's 1960-Q1) was refused as an identifier:
    it is the quarter's first day, sampled, given and written back as the data wrote it; a cell
    that is no quarter (1960Q5, 1960Q41) is named."""
    path = tmp_path / "t.csv"
    quarters = pd.period_range("1990Q1", periods=44, freq="Q")
    cells = [written.replace("%Y", str(p.year)).replace("%q", str(p.quarter)) for p in quarters]
    pd.DataFrame({"quarter": cells, "x": np.linspace(0, 1, 44)}).to_csv(path, index=False)
    table = io.read_table(str(path))
    column = table.schema[0]
    assert column.kind_name == "datetime in days" and column.time_format == written
    assert column.cycles == [365.2425]  # a season: four phases of a year
    start = pd.Timestamp("1990-01-01")
    assert table.values[:, 0].tolist() == [(p.start_time - start).days for p in quarters]
    out = tmp_path / "out.csv"
    io.write_table(str(out), to_frame(table.values, table.schema), schema=table.schema)
    assert pd.read_csv(out)["quarter"].tolist() == cells
    assert cells[39] == example
    given = pd.DataFrame({"quarter": [example, "1999-10-01", "Q4-1999"], "x": [0.5] * 3})
    given = to_values(given, table.schema)
    assert given[:, 0].tolist() == [table.values[39, 0]] * 3  # ISO 8601 and other quarters' spellings too
    for bad in ("1999Q5", "1999Q41"):
        with pytest.raises(UserError, match=f"column 'quarter' has '{bad}' at row 0, which is not a date"):
            to_values(pd.DataFrame({"quarter": [bad], "x": [0.5]}), table.schema)
    # SDMetrics reads dates with strptime, which has no quarter: handed over as dates, or it
    # scored the column NaN and left it out (1.0 here, where only the quarters differ).
    early = to_frame(table.values, table.schema).iloc[:22]
    late = early.assign(quarter=to_frame(table.values, table.schema)["quarter"].iloc[22:].to_numpy())
    assert tabular.sdmetrics_quality(late, early, table.schema) < 0.9
    typo = written.replace("%Y", "1990").replace("%q", "5")
    path.write_text(path.read_text().replace(cells[3], typo))
    shown = f"{written} ({written.replace('%Y', '2024').replace('%q', '1')})"  # with an example
    with pytest.raises(UserError, match=re.escape(f"column 'quarter' holds dates written as {shown}, "
                                                  f"but not '{typo}' at line 5")):
        io.read_table(str(path))


@pytest.mark.parametrize("written, read_as", [
    ("%b %Y", None), ("%B %Y", None), ("%b-%y", None), ("%m/%Y", None), ("%YM%m", None),
    ("%m/%d/%y", None), ("%d/%m/%y", None), ("%d.%m.%y", None), ("%Y-%m-%dT%H:%M:%SZ", None),
    ("%G-W%V", None), ("%GW%V", None),
    ("%-m/%-d/%y", "%m/%d/%y"),
])
def test_dates_pandas_guesses_no_format_for_are_dates_and_come_back_as_written(written, read_as):
    """Monthly "Jan 2021", Excel's "Jan-21", US "1/5/21" and ISO weeks "2021-W01" were refused as
    identifiers (pandas guesses no format for them); "2021-01-01T00:00:00Z" came back as
    "...+0000". A week is its Monday."""
    days = pd.date_range("2021-01-04" if "%V" in written else "2021-01-01", periods=40,
                         freq="7D" if "%V" in written else "17D")
    cells = ([f"{day.month}/{day.day}/{day:%y}" for day in days] if read_as
             else days.strftime(written).tolist())
    table = io.from_frame(pd.DataFrame({"t": cells, "x": np.linspace(0, 1, 40)}))
    assert table.schema[0].kind_name == "datetime in days"
    assert strptime_format(table.schema[0].time_format) == (read_as or written)
    if "%d" in written or "%-d" in written:  # a month's dates are its first day
        assert table.values[:, 0].tolist() == list(range(0, 40 * 17, 17))
    if "%V" in written:  # a week's, its Monday: 2021-01-04 on
        assert table.schema[0].time_origin.startswith("2021-01-04")
        assert table.values[:3, 0].tolist() == [0, 7, 14]
        early = to_frame(table.values, table.schema).iloc[:20]  # SDMetrics' strptime needs a weekday
        late = early.assign(t=to_frame(table.values, table.schema)["t"].iloc[20:].to_numpy())
        assert tabular.sdmetrics_quality(late, early, table.schema) < 0.9
    assert to_frame(table.values, table.schema)["t"].tolist() == cells


def test_a_period_column_is_dates_given_back_as_periods(tmp_path):
    """A DataFrame from a PeriodIndex (``df.reset_index()`` of quarterly data) crashed ("float()
    argument must be ... not 'Period'"): its periods are their first days, given as periods or
    text, and come back as periods; in a CSV they are written, and read back, as quarters."""
    periods = pd.period_range("1990Q1", periods=44, freq="Q")
    frame = pd.DataFrame({"quarter": periods, "x": np.linspace(0, 1, 44)})
    schema = detect(frame)
    assert schema[0].kind_name == "datetime in days" and schema[0].dtype == "period[Q-DEC]"
    values = to_values(frame, schema)
    assert values[:3, 0].tolist() == [0.0, 90.0, 181.0]  # 1990-01-01, 04-01 and 07-01
    pd.testing.assert_frame_equal(to_frame(values, schema), frame)
    given = pd.DataFrame({"quarter": pd.PeriodIndex(["1999Q4", "1991Q2"], freq="Q"), "x": [0.5, 0.5]})
    assert to_values(given, schema)[:, 0].tolist() == [values[39, 0], values[5, 0]]
    assert to_values(given.astype({"quarter": str}), schema)[:, 0].tolist() == [values[39, 0], values[5, 0]]
    path = tmp_path / "out.csv"
    io.write_table(str(path), to_frame(values, schema), schema=schema)
    assert io.read_table(str(path)).schema[0].time_format == "%YQ%q"


@pytest.mark.parametrize("labels", [
    pd.cut(np.linspace(0, 1, 40), 4, right=False),
    pd.cut(pd.date_range("2020-01-01", periods=40, freq="D"), 3),
    pd.Categorical(pd.to_datetime(["2020-01-01 00:00", "2021-06-30 12:00"] * 20)),
    pd.Categorical(pd.period_range("2020-01-06", periods=4, freq="W").repeat(10)),
    pd.Categorical(pd.to_timedelta(["1h", "90min"] * 20)),
], ids=["intervals", "date intervals", "timestamps", "periods", "durations"])
def test_a_categorys_labels_of_any_pandas_kind_survive_the_run_folder(labels):
    """``pd.cut``'s intervals (an age band), timestamps or periods as categories could not be
    saved ("Object of type Interval is not JSON serializable", after training); they are written
    tagged and come back as the same labels."""
    frame = pd.DataFrame({"band": labels, "x": np.linspace(0, 1, 40)})
    schema = detect(frame)
    assert schema[0].kind == "categorical"
    saved = from_states(json.loads(json.dumps([c.state() for c in schema])))
    assert saved == schema
    pd.testing.assert_frame_equal(to_frame(to_values(frame, schema), saved), frame)


def test_dates_in_two_formats_or_with_a_typo_name_the_cell_and_labels_stay_labels(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("when,x\n2020-01-03,1.5\n2020-02-30,2.5\n2020-01-05,0.5\n")
    with pytest.raises(UserError, match=r"column 'when' holds dates written as %Y-%m-%d \(2024-03-01\), but "
                                        r"not '2020-02-30' at line 3: fix the cell, or learn the column as "
                                        r"labels with config=\{'data': \{'categorical': \['when'\]\}\}$"):
        io.read_table(str(path))
    assert io.read_table(str(path), kinds={"categorical": ["when"]}).schema[0].kind == "categorical"
    labels = pd.DataFrame({"wave": ["2020-01", "later", "never", "2020-01"], "x": [1.0, 2.0, 3.0, 4.0]})
    assert detect(labels)[0].categories == ["2020-01", "later", "never"]  # one date among words: labels


@pytest.mark.parametrize("frequency, cycles", [("D", [365.2425, 7.0]), ("7D", [365.2425]),
                                               ("h", [7.0, 1.0]), ("MS", [365.2425]), ("YS", [])])
def test_a_date_column_keeps_the_cycles_whose_phases_its_dates_cover(frequency, cycles):
    """Weekly readings all fall on one weekday, 200 hours on a few days of one year, one date a
    year on one day of it: those cycles say nothing, and a network shown them for other dates
    would be shown phases it never saw. Months and years fall on every weekday in turn, but a
    month's or a year's row says nothing of its first day's weekday."""
    frame = pd.DataFrame({"t": pd.date_range("2000-01-01", periods=200, freq=frequency)})
    assert detect(frame)[0].cycles == cycles


def weekend_sales(days: int = 730) -> pd.DataFrame:
    """Daily rows whose sales are 5 higher on a weekend day."""
    rng = np.random.default_rng(0)
    day = pd.date_range("2022-01-01", periods=days, freq="D")
    return pd.DataFrame({"day": day, "sales": 5.0 * (day.weekday >= 5) + rng.normal(0, 1, days)})


def test_a_condition_date_shows_the_network_its_weekday(capsys):
    """Given a Saturday against a Wednesday, the conditional rows differ by about the weekend's 5.
    From the date as one number the network could not tell the days apart (in exploration a
    30-unit weekday effect came out at 0.7)."""
    model = sd.fit(weekend_sales(), condition=["day"], steps=2000, num_samples=0, likelihood_rows=0)
    assert "day: a date, shown to the network with its phase in a year and a week" in capsys.readouterr().err
    rows = model.sample(400, given={"day": [pd.Timestamp("2023-06-03"), pd.Timestamp("2023-06-07")]}, seed=0)
    saturday, wednesday = rows["sales"][:400].mean(), rows["sales"][400:].mean()
    assert 3.5 < saturday - wednesday < 6.5, (saturday, wednesday)


def test_learnt_in_painting_fills_gaps_by_the_weekday_of_their_date():
    """A third of the sales removed: filled by a model that completes rows from any shown cells,
    whose network sees a shown date's phases, the weekend's gaps come back about 5 higher."""
    frame = weekend_sales()
    gaps = frame.copy()
    gaps.loc[::3, "sales"] = np.nan
    model = sd.fit(gaps, steps=4000, num_samples=0, likelihood_rows=0, progress=False,
                   config={"train": {"inpainting": "learnt"}})
    filled = model.impute(gaps, seed=0)[::3]
    weekend = filled["day"].dt.weekday >= 5
    difference = filled["sales"][weekend].mean() - filled["sales"][~weekend].mean()
    assert 3.5 < difference < 6.5, difference


def _with_first_row(frame: pd.DataFrame) -> pd.DataFrame:
    frame.attrs["first_row"] = 2
    return frame


def test_row_groups_of_different_units_merge_to_the_finer_from_the_earlier_origin():
    days = pd.Series(pd.to_datetime(["2021-01-05", "2021-01-07"]))
    hours = pd.Series(pd.to_datetime(["2021-01-03 05:00", "2021-01-04 00:00"]))
    merged = find(days, "t").merge(find(hours, "t")).column
    assert (merged.time_unit, merged.time_origin) == ("h", "2021-01-03T05:00:00")


def test_a_date_column_is_learnt_sampled_on_its_grid_and_given(tmp_path, capsys):
    """Dates written day first in a CSV (a different one in every row: not an identifier) come
    back in that format, whole days within the training range, with the seasonal swing of
    the column that follows them; a date outside that range is named as a date."""
    rng = np.random.default_rng(0)
    day = rng.integers(0, 730, 600)
    when = pd.Timestamp("2020-01-01") + pd.to_timedelta(day, "D")
    frame = pd.DataFrame({"when": when.strftime("%d/%m/%Y"),
                          "warm": (day % 365 > 182) * 4.0 + rng.normal(0, 1, 600)})
    frame.to_csv(tmp_path / "d.csv", index=False)
    run = tmp_path / "run"
    assert cli(["train", str(run), "--data", str(tmp_path / "d.csv"), "--steps", "1500", "-n", "0",
                "--likelihood-rows", "0", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "columns: when datetime in days (%d/%m/%Y), warm numeric" in err
    assert ("when: a date, drawn with the rest; for rows by its phase in a year and a week (seasons, "
            "weekdays) train with --condition when (rows given it) or --inpainting learnt") in err
    assert cli(["sample", str(run), "-n", "2000", "-o", str(tmp_path / "s.csv"), "--quiet"]) == 0
    text = pd.read_csv(tmp_path / "s.csv")["when"]
    when = pd.to_datetime(text, format="%d/%m/%Y")  # every cell in the format, or this raises
    assert when.min() >= pd.Timestamp("2020-01-01") and when.max() <= pd.Timestamp("2021-12-30")
    warm = pd.read_csv(tmp_path / "s.csv")["warm"][((when - pd.Timestamp("2020-01-01")).dt.days % 365) > 182]
    cold = pd.read_csv(tmp_path / "s.csv")["warm"][((when - pd.Timestamp("2020-01-01")).dt.days % 365) <= 182]
    assert warm.mean() - cold.mean() > 2  # the data's 4; 0 if the date were learnt apart from warm
    with pytest.warns(UserWarning, match=r"when=01/01/2025 lies outside .* from 0\d/01/2020 to \d\d/12/2021"):
        sd.load(run).sample(1, given={"when": "01/01/2025"}, seed=0)
    assert cli(["sample", str(run), "-n", "10", "-o", str(tmp_path / "s.npy"), "--quiet"]) == 1
    assert "column 'when' holds dates or times; write .csv or .parquet" in capsys.readouterr().err


def test_a_column_of_numbers_with_a_word_names_the_cell(tmp_path):
    path = tmp_path / "typo.csv"
    path.write_text("a,b\n1,2\n2,3\n3,three\n4,5\n")
    with pytest.raises(UserError, match=r"column 'b' has a non-numeric value 'three' at line 4"):
        io.read_table(str(path))
    assert io.read_table(str(path), kinds={"categorical": ["b"]}).schema[1].kind == "categorical"


FRAME_DTYPES = {"object": ["x", None, "y", "x"], "category": ["x", "y", None, "x"],
                "bool": [True, False, True, True], "boolean": [True, None, False, True],
                "Int64": [1, None, 3, 4], "float32": [1.5, np.nan, 2.5, 3.0], "int64": [3, 1, 2, 2],
                "Float64": [1.5, None, 2.5, 3.0], "double[pyarrow]": [1.5, None, 2.5, 3.0],
                "int64[pyarrow]": [3, 1, 2, 2], "bool[pyarrow]": [True, False, True, True],
                "string[pyarrow]": ["x", "y", None, "x"], "ordered category": ["low", "high", None, "low"]}
"""A column of each dtype a DataFrame brings (pandas' nullable ones and pyarrow's, as
``read_parquet`` gives them), with a missing cell where the dtype allows one."""
ORDERED = pd.CategoricalDtype(["low", "high"], ordered=True)  # came back unordered


@pytest.mark.parametrize("dtype", FRAME_DTYPES)
def test_frames_round_trip_with_their_dtypes(dtype):
    column = pd.Series(FRAME_DTYPES[dtype], dtype=ORDERED if dtype == "ordered category" else dtype)
    frame = pd.DataFrame({"c": column, "z": [0.1, 0.2, 0.3, 0.4]})
    schema = detect(frame)
    back = to_frame(to_values(frame, schema), schema)
    expected = frame.fillna({"c": np.nan}) if dtype == "object" else frame  # missing text is NaN
    pd.testing.assert_frame_equal(back, expected)


def test_an_unknown_label_is_named():
    schema = detect(pd.DataFrame({"k": ["a", "b"]}))
    with pytest.raises(UserError, match="label 'c', which the model never saw"):
        to_values(pd.DataFrame({"k": ["a", "c"]}), schema)


# -- the encoder ----------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["onehot", "bits"])
@pytest.mark.parametrize("scaling", ["standardize", "quantile"])
def test_table_encoder_round_trip(encoding, scaling):
    frame = mixed_frame()
    schema = detect(frame)
    x = torch.as_tensor(to_values(frame, schema))
    encoder = tables.fit(x, schema, scaling=scaling, encoding=encoding)
    y = encoder.forward(x)
    assert y.shape[1] == encoder.transformed_dim and torch.isfinite(y).all()
    back = encoder.inverse(y)
    assert torch.equal(back.isnan(), x.isnan())
    present = ~x.isnan()
    assert torch.allclose(back[present], x[present], atol=1e-6)
    restored = tables.from_state(json.loads(json.dumps(encoder.state())))
    assert torch.equal(restored.forward(x), y)


@pytest.mark.parametrize("questions, encoded", [(8, 64 + 1), (9, 9 * 3 + 1)])
def test_many_categorical_columns_are_encoded_as_bits(questions, encoded):
    """Up to ``ONEHOT_MOST_ENTRIES`` one-hot entries (8 columns of 8 answers) the categories are
    one-hot; beyond (9 columns) every categorical column is 3 analog bits, while the numeric
    column's present/missing block stays one-hot. Saved and restored alike; a model saved before
    the rule keeps one-hot."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"q{j}": rng.choice(list("abcdefgh"), 300) for j in range(questions)})
    frame["x"] = np.where(rng.random(300) < 0.1, np.nan, rng.normal(size=300))
    schema = detect(frame)
    x = torch.as_tensor(to_values(frame, schema))
    encoder = tables.fit(x, schema)
    assert encoder.transformed_dim == encoded + 2
    assert encoder.patterns[-1].shape == (2, 2)  # x's present/missing block stays one-hot
    y = encoder.forward(x)
    assert torch.equal(encoder.inverse(y).isnan(), x.isnan())
    assert torch.equal(encoder.inverse(y)[:, :questions], x[:, :questions])
    state = json.loads(json.dumps(encoder.state()))
    assert torch.equal(tables.from_state(state).forward(x), y)
    del state["categories_as_bits"]
    assert tables.from_state(state).transformed_dim == 8 * questions + 3
    assert tables.fit(x, schema, encoding="onehot").transformed_dim == 8 * questions + 3


def test_decoding_gives_only_categories_seen_in_training_and_integers_in_their_range():
    schema = [Column("k", "categorical", "object", ["a", "b", "c"]), Column("n", "integer", "int64")]
    x = torch.tensor([[0.0, 2.0], [1.0, 5.0], [0.0, 3.0]], dtype=torch.float64)  # "c" never seen
    for encoding in ("onehot", "bits"):
        encoder = tables.fit(x, schema, encoding=encoding)
        noise = torch.randn(20_000, encoder.transformed_dim, dtype=torch.float64) * 5
        decoded = encoder.inverse(noise)
        assert set(decoded[:, 0].unique().tolist()) == {0.0, 1.0}
        assert decoded[:, 1].min() == 2 and decoded[:, 1].max() == 5
        assert torch.equal(decoded[:, 1], decoded[:, 1].round())


def test_log_prob_refuses_a_table_with_categories_by_name_and_the_advice_gives_a_density():
    frame = mixed_frame(200)[["mass", "count", "kind"]]
    model = sd.fit(frame, epochs=1, progress=False)
    with pytest.raises(UserError, match="column 'kind' is categorical ") as refusal:
        model.log_prob(frame)
    advice, conditional = re.search(r"; a model trained with (.*) has one, and one trained with (.*) the "
                                    r"density of the rest given it \(log_prob\(x, given=\.\.\.\)\)$",
                                    str(refusal.value)).groups()
    assert advice == ("columns=['mass', 'count'], "  # the count learnt as continuous, the label left out
                      "config={'data': {'drop_missing': True, 'numeric': ['count']}}")
    numeric = sd.fit(frame, **eval(f"dict({advice})"), epochs=1, progress=False)  # as it says
    log_p = numeric.log_prob(frame).numpy()  # the label column beside them is passed over
    gaps = frame[["mass", "count"]].isna().any(axis=1).to_numpy()
    assert np.isfinite(log_p[~gaps]).all() and np.isnan(log_p[gaps]).all()  # a gap is not scored
    # Or the label kept, as the numbers' condition: their density given it.
    assert conditional == "condition=['kind'], config={'data': {'drop_missing': True, 'numeric': ['count']}}"
    given = sd.fit(frame, **eval(f"dict({conditional})"), epochs=1, progress=False, verbose=False)
    complete = frame.dropna()
    assert torch.isfinite(given.log_prob(complete[["mass", "count"]], given=complete[["kind"]])).all()


# -- DataFrames in, DataFrames out; missing cells ------------------------------------------

def test_a_dataframe_model_samples_dataframes_with_the_same_columns_and_dtypes():
    frame = mixed_frame()
    model = sd.fit(frame, epochs=2, progress=False)
    samples = model.sample(500, seed=0)
    assert isinstance(samples, pd.DataFrame)
    assert list(samples.columns) == list(frame.columns)
    assert samples.dtypes.to_dict() == frame.dtypes.to_dict()
    assert set(samples["kind"].dropna()) <= {"a", "b", "c"}
    assert isinstance(model.sample(5, seed=0, frame=False), torch.Tensor)


def test_a_model_fitted_without_a_run_folder_pickles_and_samples_the_same_rows():
    """The README's way to keep such a model (pickle, joblib): its encoders, labels and network."""
    import pickle

    model = sd.fit(mixed_frame(), epochs=2, progress=False)
    again = pickle.loads(pickle.dumps(model))
    pd.testing.assert_frame_equal(again.sample(300, seed=1), model.sample(300, seed=1))


def test_dates_written_without_leading_zeros_come_back_without_them(tmp_path):
    """"1/2/2020 9:05" came back "01/02/2020 09:05": the same date, not as the data wrote it."""
    cells = ["1/2/2020 9:05", "12/25/2020 13:30", "3/14/2021 0:00", "10/1/2020 10:45"]
    path = tmp_path / "t.csv"
    path.write_text("when,x\n" + "".join(f"{cell},{k}.5\n" for k, cell in enumerate(cells)))
    table = io.read_table(str(path))
    assert table.schema[0].time_format == "%-m/%-d/%Y %-H:%M"
    assert to_frame(table.values, table.schema)["when"].tolist() == cells
    padded = ["01/02/2020", "12/25/2020"]  # a column written with its zeros keeps them
    path.write_text("when,x\n" + "".join(f"{cell},{k}.5\n" for k, cell in enumerate(padded)))
    table = io.read_table(str(path))
    assert to_frame(table.values, table.schema)["when"].tolist() == padded


def test_a_frames_index_is_said_not_to_be_learnt_where_it_holds_data():
    """A time series read with index_col=0 keeps its dates in the index, which fit ignored."""
    values = np.random.default_rng(0).normal(size=(300, 2))
    days = pd.date_range("2024-01-01", periods=300, name="date")
    dated = pd.DataFrame(values, columns=["a", "b"], index=days)
    with pytest.warns(UserWarning, match=r"its index \(date\) is not learnt, only its columns; reset_index"):
        sd.training_data(dated)
    with pytest.warns(UserWarning, match=r"its index \(object\) is not learnt"):
        sd.training_data(dated.set_axis([f"r{k}" for k in range(300)]))
    frame = pd.DataFrame(values, columns=["a", "b"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sd.training_data(frame[frame["a"] > 0])  # a filtered frame's row numbers: no warning


def test_a_dataframe_of_numbered_columns_gets_its_numbers_back(tmp_path):
    """``pd.DataFrame(array)`` labels its columns 0, 1, 2: samples (from the model and from its
    run folder) and filled tables carry those labels, not their text, so ``samples[0]`` works
    (and such a frame's cells are found: impute and log_prob named '0' and found no column)."""
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(300, 3)))
    model = sd.fit(frame, epochs=2, progress=False, out=tmp_path / "run", num_samples=0)
    for fitted in (model, sd.load(tmp_path / "run")):
        assert list(fitted.sample(10, seed=0).columns) == [0, 1, 2]
    gaps = frame.head(4).assign(**{"7": ["a", "b", "c", "d"]}).rename(columns={"7": 7})
    gaps.iloc[0, 1] = np.nan
    filled = model.impute(gaps, seed=0)
    assert list(filled.columns) == [0, 1, 2, 7] and not filled[1].isna().any()
    assert list(filled[7]) == ["a", "b", "c", "d"]
    assert torch.isfinite(model.log_prob(frame.head(3))).all()  # read by their numbers too
    picked = sd.fit(frame, columns=[2, 0], steps=2, progress=False, verbose=False)
    assert list(picked.sample(2).columns) == [2, 0]


def test_a_series_is_learnt_as_a_one_column_dataframe():
    """A pandas Series was read as an array: named x1, sampled as a tensor, and a Series of
    labels refused ("values of type object are not real numbers")."""
    rng = np.random.default_rng(0)
    for series, dtype in ((pd.Series(rng.choice(["a", "b"], 200), name="kind"), object),
                          (pd.Series(rng.normal(size=200), name="height"), np.float64)):
        samples = sd.fit(series, steps=20, progress=False, verbose=False, num_samples=0).sample(5, seed=0)
        assert isinstance(samples, pd.DataFrame) and list(samples.columns) == [series.name]
        assert samples[series.name].dtype == dtype


def test_bad_columns_and_counts_from_python_are_one_line_errors():
    """`sd.fit(frame, columns=[...])` naming a column the frame lacks ended in pandas' KeyError;
    `model.sample(2.5)` drew 2 rows."""
    frame = pd.DataFrame({"mass": [1.5, 2.5, 3.5, 4.5] * 10, "kind": list("abab") * 10})
    with pytest.raises(UserError, match=r"^DataFrame: no column 'kinds' \(did you mean 'kind'\?\); "
                                        r"columns are 'mass', 'kind'$"):
        sd.fit(frame, columns=["mass", "kinds"], progress=False)
    model = sd.fit(frame, steps=2, progress=False, verbose=False)
    with pytest.raises(UserError, match=r"^the number of samples is a whole number, not 2\.5$"):
        model.sample(2.5)
    for bad in ("10", None, True, float("nan")):  # a numpy or overflow error, or one row for True
        with pytest.raises(UserError, match=rf"^the number of samples is a whole number, not {bad!r}$"):
            model.sample(bad)
    assert len(model.sample(np.int64(3))) == 3 and len(model.sample(4.0)) == 4


def test_a_label_the_training_rows_lack_is_refused_when_given():
    """A category that a pandas dtype declares (or that only held-out rows have) ended `--given`
    in a ValueError traceback: its one-hot entry, never on in training, was taken for a number
    beyond its range."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60), "grade": pd.Categorical(
        rng.choice(["A", "B", "C"], 60), categories=["A", "B", "C", "D"], ordered=True)})
    model = sd.fit(frame, steps=2, progress=False, verbose=False)
    with pytest.raises(UserError, match=r"^given: column 'grade' has the label 'D', which the model never "
                                        r"saw in its training rows \(it knows A, B, C\)$"):
        model.sample(2, given={"grade": ["A", "D"]})
    assert model.sample(2, given={"grade": "C"}, seed=0)["grade"].eq("C").all()
    # Filling gaps beside such a label is a guess: done, but said (it was silent).
    gaps = pd.DataFrame({"x": [np.nan, np.nan, 0.5, np.nan], "grade": pd.Categorical(
        ["D", "A", "D", "D"], categories=["A", "B", "C", "D"], ordered=True)})
    with pytest.warns(UserWarning, match=r"^impute: 2 rows to fill hold a label the training rows lack "
                                         r"\(the first: column 'grade' has the label 'D', which the model "
                                         r"never saw"):
        filled = model.impute(gaps, seed=0)
    assert filled["x"].notna().all() and filled["x"][2] == 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.impute(gaps.iloc[1:3], seed=0)  # the row with D has no gap: nothing is guessed


def test_a_column_of_fractions_declared_integer_is_said_to_be_rounded():
    """`--integer frac` on values between 0 and 1 trained silently and drew only 0 and 1."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"frac": rng.uniform(0.05, 0.95, 80).round(3), "count": rng.integers(0, 5, 80)})
    with pytest.warns(UserWarning, match=r"^column 'frac' is learnt as whole numbers, but 100% of its values "
                                         r"are not \(such as 0\.\d+\): samples are rounded$"):
        sd.fit(frame, config={"data": {"integer": ["frac"]}}, steps=2, progress=False, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a column of whole numbers declared integer says nothing
        sd.fit(frame, config={"data": {"integer": ["count"]}}, steps=2, progress=False, verbose=False)


def test_a_count_or_a_date_given_between_its_whole_values_is_refused():
    """`--given visits=2.5` conditioned on 2.5 and wrote the rows with visits=2: a count (or a
    date learnt in days) is given a whole value, or is refused saying so."""
    rng = np.random.default_rng(0)
    days = pd.to_timedelta(rng.integers(0, 90, 100), "D")
    frame = pd.DataFrame({"visits": rng.integers(0, 5, 100), "x": rng.normal(size=100),
                          "joined": pd.Timestamp("2020-01-01") + days})
    model = sd.fit(frame, steps=2, progress=False, verbose=False)
    rows = model.sample(2, given={"visits": 2.0, "joined": pd.Timestamp("2020-02-01")}, seed=0)
    assert rows["visits"].eq(2).all()
    with pytest.raises(UserError, match=r"^given: column 'visits' holds whole numbers, not 2\.5$"):
        model.sample(2, given={"visits": [1, 2.5]})
    with pytest.raises(UserError, match=r"^given: column 'joined' holds whole days, not a time between "
                                        r"2020-02-01 and 2020-02-02$"):
        model.sample(2, given={"joined": pd.Timestamp("2020-02-01 12:00")})


def test_missing_cells_reproduce_their_rate_and_dependence_on_another_column():
    """y is missing with probability 0.05 where k = "a" and 0.40 where k = "b": a model that
    learnt missingness independently of k would give both the same rate."""
    rng = np.random.default_rng(0)
    n = 2000
    k = rng.choice(["a", "b"], n)
    y = rng.normal(size=n) + (k == "b")
    y[rng.random(n) < np.where(k == "a", 0.05, 0.40)] = np.nan
    frame = pd.DataFrame({"k": k, "y": y, "z": rng.normal(size=n)})
    model = sd.fit(frame, config={"train": {"steps": 1500}}, progress=False, num_samples=0)
    samples = model.sample(10_000, seed=0)
    rate = samples["y"].isna().groupby(samples["k"]).mean()
    # Training-rate standard errors: sqrt(p(1-p)/1000) = 0.007 (a) and 0.015 (b); the model adds
    # its own error, so the bounds are a few of those.
    assert abs(rate["a"] - 0.05) < 0.03 and abs(rate["b"] - 0.40) < 0.06
    assert abs(samples["y"].isna().mean() - np.isnan(y).mean()) < 0.03
    present = samples.dropna()
    means = present.groupby("k")["y"].mean()
    assert abs(means["b"] - means["a"] - 1) < 0.2


# -- point masses ---------------------------------------------------------------------------

def spiked_frame(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    """``amount`` is exactly 0 with probability 0.1 where k = "a" and 0.5 where k = "b", else a
    log-normal draw; ``level`` is mostly recorded as 1, 2 or 3; ``reading`` is whole numbers only
    (every value repeated, as often as its neighbours); ``noise`` is continuous."""
    rng = np.random.default_rng(seed)
    k = rng.choice(["a", "b"], n)
    amount = np.where(rng.random(n) < np.where(k == "a", 0.1, 0.5), 0.0, rng.lognormal(1, 0.5, n))
    level = np.where(rng.random(n) < 0.8, rng.integers(1, 4, n), rng.uniform(0.5, 3.5, n))
    return pd.DataFrame({"k": k, "amount": amount, "level": level.astype(float),
                         "reading": rng.normal(100, 15, n).round(), "noise": rng.normal(size=n)})


def test_a_column_of_codes_comes_back_as_its_codes():
    """A disease score recorded as one of 24 values, some close together (9.97, 10.3, 10.58):
    every value is a point mass, so samples are codes the data has (not 10.025), and the block of
    25 entries is encoded as 5 analog bits (``categorical_encoding = "auto"``)."""
    rng = np.random.default_rng(0)
    codes = np.round(np.sort(rng.uniform(0, 40, 24)), 6)
    frame = pd.DataFrame({"disease": rng.choice(codes, 1500), "visits": rng.poisson(3, 1500)})
    frame["visits"] += (frame["disease"] > 20).astype(int) * 3
    model = sd.fit(frame, steps=400, progress=False)
    assert model.encoder.masses == [sorted(codes.tolist())]
    assert model.encoder.patterns[-1].shape == (25, 5)
    samples = model.sample(2000, seed=0)
    assert samples["disease"].isin(codes).all()
    shares = samples["disease"].value_counts(normalize=True).reindex(codes, fill_value=0)
    assert (shares - frame["disease"].value_counts(normalize=True).reindex(codes)).abs().max() < 0.05


def test_point_masses_are_the_spikes_not_a_grid_of_readings():
    frame = spiked_frame()
    masses = {c: tables.point_masses(frame[c].to_numpy()) for c in ["amount", "level", "reading", "noise"]}
    assert masses == {"amount": [0.0], "level": [1.0, 2.0, 3.0], "reading": [], "noise": []}
    with_gaps = frame["amount"].to_numpy().copy()
    with_gaps[::7] = np.nan
    assert tables.point_masses(with_gaps) == [0.0]
    rng = np.random.default_rng(1)  # a column longer than the cells searched: a sample finds it
    long = rng.normal(size=tables.POINT_MASS_SAMPLE_ROWS + 100_000)
    long[rng.random(len(long)) < 0.3] = 0.0
    assert tables.point_masses(long) == [0.0]
    schema = detect(frame, integer=["reading"], numeric=["level"])
    x = torch.as_tensor(to_values(frame, schema))
    encoder = tables.fit(x, schema, continuous=["level"])  # declared numeric: left continuous
    assert encoder.point_mass_columns == [1] and encoder.masses == [[0.0]]
    # Which spike a cell holds is a category: such a table samples with the tables' steps.
    steps = {name: build.follow_data(config.preset("default"), len(frame), tables.fit(
        torch.as_tensor(frame[[name]].to_numpy()), [Column(name, "numeric")]), False).sample.num_steps
        for name in ("amount", "noise")}
    assert steps == {"amount": build.TABLE_SAMPLER_STEPS, "noise": config.SampleConfig().num_steps}


def test_a_column_of_one_value_and_gaps_is_learnt_by_its_gaps_and_one_without_gaps_refused():
    """A survey's ticked boxes ("1" or empty) were refused as constant; only --keep-constant took
    them. Their gaps are the information: learnt, the values passed through."""
    rng = np.random.default_rng(0)
    ticked = np.where(rng.random(200) < 0.3, np.nan, 1.0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "ticked": ticked})
    schema = detect(frame)
    x = torch.as_tensor(to_values(frame, schema))
    encoder = tables.fit(x, schema)
    back = encoder.inverse(encoder.forward(x))
    assert torch.equal(back.isnan(), x.isnan()) and (back[:, 1][~back[:, 1].isnan()] == 1).all()
    frame["ticked"] = 1.0
    with pytest.raises(UserError, match="column 'ticked' is constant"):
        tables.fit(torch.as_tensor(to_values(frame, detect(frame))), detect(frame))


def test_point_masses_round_trip_with_gaps_and_restore():
    frame = spiked_frame(600)
    frame.loc[frame.index[::9], "amount"] = np.nan
    schema = detect(frame)
    x = torch.as_tensor(to_values(frame, schema))
    encoder = tables.fit(x, schema)
    assert encoder.point_mass_columns == [1, 2]
    y = encoder.forward(x)
    # numbers; k and gaps one-hot; the point masses as bits: 0 or not, 1/2/3 or none
    assert y.shape[1] == encoder.transformed_dim == 4 + 2 + 2 + 1 + 2
    back = encoder.inverse(y)
    assert torch.equal(back.isnan(), x.isnan())
    zero, whole = x[:, 1] == 0, torch.isin(x[:, 2], torch.tensor([1.0, 2.0, 3.0], dtype=x.dtype))
    assert torch.equal(back[zero, 1], x[zero, 1]) and torch.equal(back[whole, 2], x[whole, 2])  # exactly
    assert torch.allclose(back[~x.isnan()], x[~x.isnan()], atol=1e-9)
    restored = tables.from_state(json.loads(json.dumps(encoder.state())))
    assert torch.equal(restored.forward(x), y)
    old = {k: v for k, v in tables.fit(x[:, 3:], schema[3:]).state().items()
           if k not in ("point_mass_columns", "masses")}  # a model saved before point masses
    assert tables.from_state(old).point_mass_columns == []
    # Which spike a cell holds belongs to the cell: hidden and shown with its value, and never
    # taken as the row's own where the cell was missing (its value is then a draw).
    where = encoder.coordinates()[1]
    value, gaps, spikes = [where[0]], where[1:3], where[3:5]  # amount's
    assert value + spikes in encoder.cell_groups() and gaps in encoder.cell_groups()
    measured = encoder.measured(x)
    missing = x[:, 1].isnan()
    assert not measured[missing][:, value + spikes].any() and measured[~missing][:, spikes].all()
    z, known = encoder.known(x)
    assert not known[missing][:, spikes].any() and known[~missing][:, spikes].all()
    assert torch.equal(z[~missing][:, spikes], y[~missing][:, spikes])
    refusal = (r"column 'amount' has point masses .* trained with "
               r"config=\{'data': \{'numeric': \['amount'\]\}\} has one$")
    with pytest.raises(UserError, match=refusal):
        clean = spiked_frame(600)[["amount", "noise"]]
        values = torch.as_tensor(to_values(clean, detect(clean)))
        tables.fit(values, detect(clean)).forward_and_log_det(values)


def test_a_model_reproduces_each_spike_and_its_dependence_on_another_column():
    """amount is 0 in 10% of the "a" rows and 50% of the "b" rows: a model without point
    masses makes no exact zeros, one that learnt the spike apart from k the same share for both."""
    frame = spiked_frame(1200)
    model = sd.fit(frame, config={"train": {"steps": 1500}}, progress=False, num_samples=0)
    samples = model.sample(4000, seed=0)
    zero = (samples["amount"] == 0).groupby(samples["k"]).mean()
    data = (frame["amount"] == 0).groupby(frame["k"]).mean()
    # Sampling standard errors sqrt(p(1-p)/2000) are 0.007 (a) and 0.011 (b); the model adds
    # its own error (0.037 at most over two training seeds), so the bounds are a few of those.
    assert abs(zero["a"] - data["a"]) < 0.04 and abs(zero["b"] - data["b"]) < 0.06
    level, data_level = (f["level"].value_counts(normalize=True) for f in (samples, frame))
    assert all(abs(level[v] - data_level[v]) < 0.05 for v in (1.0, 2.0, 3.0))  # each about 0.27
    inside = samples["noise"].between(frame["noise"].min(), frame["noise"].max(), inclusive="neither")
    assert samples["noise"][inside].value_counts().max() < 5  # a continuous column stays continuous
    between = samples.loc[~samples["level"].isin([1.0, 2.0, 3.0]), "level"]
    assert 0.1 < len(between) / len(samples) < 0.3 and between.between(0.3, 3.7).mean() > 0.95


def test_train_says_which_columns_it_takes_as_skewed_and_how_to_leave_them(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "towns.csv"
    pd.DataFrame({"population": np.exp(rng.normal(3, 2, 300)).round(),
                  "age": rng.normal(45, 15, 300).round()}).to_csv(data, index=False)
    assert cli(["train", str(tmp_path / "run"), "--data", str(data), "--steps", "20", "-n", "0"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"population: skewed, learnt through a Yeo-Johnson transform \(exponent [\d.e-]+; "
                     r"--preprocess standardize leaves it as it is\)", err)
    assert "age: skewed" not in err
    assert cli(["train", str(tmp_path / "run2"), "--data", str(data), "--steps", "20", "-n", "0",
                "--preprocess", "standardize"]) == 0  # as the line says
    assert "skewed" not in capsys.readouterr().err


def test_train_says_which_values_are_point_masses_and_how_to_keep_a_column_continuous(tmp_path, capsys):
    data = tmp_path / "spiked.csv"
    spiked_frame(300).to_csv(data, index=False)
    assert cli(["train", str(tmp_path / "run"), "--data", str(data), "--steps", "20", "-n", "0"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"amount: \d+% of its values are 0, learnt as a point mass \(--numeric amount "
                     r"takes it as continuous\)", err)
    assert re.search(r"level: \d+% of its values are one of 1, 2, 3, learnt as point masses", err)
    assert cli(["train", str(tmp_path / "run2"), "--data", str(data), "--steps", "20", "-n", "300",
                "--likelihood-rows", "0", "--numeric", "amount"]) == 0  # as the line says
    err = capsys.readouterr().err
    assert "amount: " not in err and "level: " in err
    assert (tmp_path / "run2" / "samples.png").stat().st_size > 0  # panels with the spikes' shares


def test_train_says_when_categories_are_bits_and_the_advice_keeps_one_hot(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "survey.csv"
    pd.DataFrame({f"q{j}": rng.choice(list("abcdefgh"), 200) for j in range(9)}).to_csv(data, index=False)
    assert cli(["train", str(tmp_path / "run"), "--data", str(data), "--steps", "20", "-n", "0"]) == 0
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if line.startswith("categories:"))
    assert line.startswith("categories: learnt as analog bits, their 72 one-hot entries being over 64")
    advice = re.search(r"with `\[data\]` then `(.+)` keeps one-hot", line).group(1)
    (tmp_path / "onehot.toml").write_text(f"[data]\n{advice}\n")
    assert cli(["train", str(tmp_path / "run2"), "--data", str(data), "--steps", "20", "-n", "0",
                "--config", str(tmp_path / "onehot.toml")]) == 0
    assert "categories:" not in capsys.readouterr().err
    assert sd.load(tmp_path / "run2").encoder.transformed_dim == 72
    assert sd.load(tmp_path / "run").encoder.transformed_dim == 27


# -- budget ---------------------------------------------------------------------------------

def test_the_budget_follows_the_rows_and_is_recorded(tmp_path):
    small, medium, large = budget.resolve(120), budget.resolve(20_000), budget.resolve(900_000)
    assert abs(small.steps - budget.MAX_STEPS) <= small.steps_per_epoch and small.keep_best
    assert small.batch_size == budget.MIN_BATCH and budget.resolve(1000).batch_size == 128
    assert abs(medium.steps - 250 * 20_000 / 512) <= medium.steps_per_epoch and not medium.keep_best
    assert large.steps <= budget.MAX_STEPS + large.steps_per_epoch and large.batch_size == budget.MAX_BATCH
    assert budget.resolve(10_000, epochs=3).epochs == 3 and budget.resolve(1000, steps=700).steps == 100 * 7
    assert not budget.resolve(120, keep_best="no").keep_best
    assert budget.resolve(10**5, keep_best="yes").keep_best
    frame = mixed_frame(150)
    sd.fit(frame, out=tmp_path / "run", config={"train": {"steps": 40}}, progress=False, num_samples=0)
    config = (tmp_path / "run" / "config.toml").read_text()
    assert "steps = 40" in config and "batch_size = 32" in config and "epochs = 10" in config
    assert 'keep_best = "yes"' in config
    # 12 encoded columns and categories: finer sampling; 135 training rows: the narrower
    # network (4 x 256 above 8 encoded columns from 500 rows), recorded and built alike
    assert "hidden = [\n    128," in config and "num_steps = 100" in config
    assert {p.shape[0] for p in sd.load(tmp_path / "run").net.parameters() if p.ndim == 2} >= {128}
    assert build.widths(ModelConfig(), 12, rows=499) == [128] * 4
    assert build.widths(ModelConfig(), 12, rows=500) == build.widths(ModelConfig(), 12) == [256] * 4
    assert build.widths(ModelConfig(), 8, rows=10**6) == [128] * 4
    # ...but not for a wide table of few rows (51 yearly rates with gaps: 153 encoded columns)
    assert build.widths(ModelConfig(), build.NARROW_MOST_COLUMNS, rows=219) == [128] * 4
    assert build.widths(ModelConfig(), 153, rows=219) == [256] * 4
    # a network that also takes a condition keeps 4 x 256 (posteriors from few simulations)
    for given in ({"data": {"condition": ["kind"]}, "train": {"steps": 20}},
                  {"train": {"inpainting": "learnt", "steps": 20}}):
        conditional = sd.fit(frame, config=given, progress=False)
        assert conditional.config.model.hidden == [256] * 4
        assert {p.shape[0] for p in conditional.net.parameters() if p.ndim == 2} >= {256}
    chosen = sd.fit(frame, config={"train": {"steps": 40}, "sample": {"num_steps": 30}}, progress=False)
    assert chosen.config.sample.num_steps == 30
    numeric = sd.fit(frame[["mass"]], config={"train": {"steps": 40}}, progress=False).config
    assert numeric.model.hidden == [128] * 4 and numeric.sample.num_steps == 50


# -- metrics --------------------------------------------------------------------------------

def test_total_variation_and_associations_against_known_values():
    p = tabular.frequencies(np.array([0, 0, 1, np.nan]), 2)
    assert p.tolist() == [0.5, 0.25, 0.25]
    assert tabular.total_variation(p, np.array([0.25, 0.25, 0.5])) == pytest.approx(0.25)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, 5000).astype(float)
    schema = [Column("a", "categorical", "int64", [0, 1, 2]), Column("b", "categorical", "int64", [0, 1, 2]),
              Column("c", "categorical", "int64", [0, 1, 2]), Column("x", "numeric")]
    rows = np.column_stack([codes, codes, rng.integers(0, 3, 5000), codes + rng.normal(size=5000) * 1e-3])
    a = tabular.associations(rows, schema)
    assert a[0, 1] == pytest.approx(1.0) and a[0, 2] < 0.05  # Cramér's V: copy vs independent
    assert a[0, 3] == pytest.approx(1.0, abs=1e-3) and a[2, 3] < 0.05  # correlation ratio


def test_evaluate_compares_dataframes_with_categories_and_gaps_in_any_column_order():
    """``sd.evaluate`` on DataFrames: the same numbers whatever the samples' column order, the
    category's TVD and the missing rates as counted by hand, floors only with training rows."""
    reference = mixed_frame(400, seed=1)
    train, holdout = mixed_frame(400, seed=2), mixed_frame(400, seed=3)
    samples = mixed_frame(300, seed=4)
    samples.loc[samples["kind"] == "c", "kind"] = "a"  # no "c" at all: TVD = the reference's share of c
    result = sd.evaluate(samples, against=reference, train=train, holdout=holdout, two_sample_tests=False)
    shuffled = sd.evaluate(samples[samples.columns[::-1]], against=reference, train=train, holdout=holdout,
                           two_sample_tests=False)
    assert json.dumps(result, sort_keys=True) == json.dumps(shuffled, sort_keys=True)
    kind = next(row for row in result["table"]["categories"] if row["column"] == "kind")
    shares = [reference["kind"].eq(k).mean() for k in "abc"] + [reference["kind"].isna().mean()]
    made = [samples["kind"].eq(k).mean() for k in "abc"] + [samples["kind"].isna().mean()]
    assert kind["tvd"] == pytest.approx(0.5 * np.abs(np.subtract(shares, made)).sum())
    gaps = next(row for row in result["table"]["missing"] if row["column"] == "mass")
    assert (gaps["rate"], gaps["reference_rate"], gaps["train_rate"]) == pytest.approx(
        (samples["mass"].isna().mean(), reference["mass"].isna().mean(), train["mass"].isna().mean()))
    assert 0.4 < result["memorisation"]["share"] < 0.6 and result["ratio"] > 0  # fresh rows: nothing copied
    alone = sd.evaluate(samples, against=reference, two_sample_tests=False)
    assert "ratio" not in alone and "tvd_floor" not in alone["table"]["categories"][0]
    assert alone["table"]["categories"][0]["tvd"] == result["table"]["categories"][0]["tvd"]
    with pytest.raises(UserError, match="samples has no column 'grade'"):
        sd.evaluate(samples.drop(columns="grade"), against=reference)
    with pytest.warns(UserWarning, match=r"^evaluate: samples column 'grade' not in the reference: compared "
                                         r"on mass, count, kind, flag only$"):  # a partial comparison, said
        part = sd.evaluate(samples, against=reference.drop(columns="grade"), two_sample_tests=False)
    assert [row["column"] for row in part["table"]["categories"]] == ["kind", "flag"]
    with pytest.raises(UserError, match="alike, as DataFrames or as arrays"):
        sd.evaluate(samples, against=reference.to_numpy())


def test_evaluate_takes_a_data_file_as_its_reference(tmp_path):
    """`sd.evaluate(rows, against="test.csv")` ended in a TypeError (the name read as a target)."""
    reference, samples = mixed_frame(400, seed=1), mixed_frame(300, seed=4)
    path = tmp_path / "test.csv"
    reference.to_csv(path, index=False)
    from_file = sd.evaluate(samples, against=str(path), two_sample_tests=False)
    in_memory = sd.evaluate(samples, against=pd.read_csv(path), two_sample_tests=False)
    assert from_file["table"] == in_memory["table"] and from_file["distance"] == in_memory["distance"]
    reference[["mass", "count"]].dropna().to_csv(path, index=False)  # numbers only: arrays too
    numbers = samples[["mass", "count"]].dropna()
    assert (sd.evaluate(numbers.to_numpy(), against=str(path), two_sample_tests=False)["distance"]
            == sd.evaluate(numbers, against=pd.read_csv(path), two_sample_tests=False)["distance"])
    book = tmp_path / "book.xlsx"  # a workbook's named sheet, and a file that is not there
    with pd.ExcelWriter(book) as writer:
        numbers.to_excel(writer, index=False, sheet_name="Notes")
        pd.read_csv(path).to_excel(writer, index=False, sheet_name="Test")
    from_sheet = sd.evaluate(numbers, against=f"{book}#Test", two_sample_tests=False)["distance"]
    from_csv = sd.evaluate(numbers, against=pd.read_csv(path), two_sample_tests=False)["distance"]
    assert from_sheet == pytest.approx(from_csv, rel=1e-12)  # its whole numbers come back as integers
    with pytest.raises(UserError, match=r"^data file not found: .*tset\.csv$"):
        sd.evaluate(numbers, against=str(tmp_path / "tset.csv"))


def test_exact_w1_with_l1_cost_against_a_known_shift():
    a = np.zeros((50, 2))
    assert tabular.wasserstein_l1(a, a + np.array([0.3, 0.4])) == pytest.approx(0.7)


# -- the command line -----------------------------------------------------------------------

# A corner plot (6 columns) is slow here: every narrower run's samples.png is one.
@pytest.mark.parametrize("columns", [pytest.param(6, marks=pytest.mark.slow), 10])
def test_a_table_of_numbers_wider_than_a_corner_plot_is_drawn_column_by_column(tmp_path, columns):
    """A corner plot shows 8 columns: breast cancer's 31 were drawn as its first 8, silently."""
    x = np.random.default_rng(0).normal(size=(200, columns))
    with mock.patch.object(plots, "table_plot", wraps=plots.table_plot) as drawn:
        sd.fit(x, steps=20, out=tmp_path / "run", progress=False, num_samples=300, likelihood_rows=0)
    wide = columns > plots.CORNER_COLUMNS
    assert drawn.called == wide and (tmp_path / "run" / "pairs.png").exists() == wide
    if wide:
        assert len(drawn.call_args.args[2]) == columns  # every column has its panel
    assert (tmp_path / "run" / "samples.png").read_bytes().startswith(b"\x89PNG")


def test_cli_trains_on_a_table_with_gaps_and_writes_typed_samples(tmp_path, capsys):
    frame = mixed_frame(300)
    data = tmp_path / "table.csv"
    frame.to_csv(data, index=False)
    run = tmp_path / "run"
    assert cli(["train", str(run), "--data", str(data), "--steps", "60", "-n", "2000",
                "--likelihood-rows", "0", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "columns: mass numeric, count integer, kind categorical (3), flag categorical (2)" in err
    assert "training rows have missing cells" in err
    metrics = json.loads((run / "metrics.json").read_text())
    assert {c["column"] for c in metrics["table"]["categories"]} == {"kind", "flag", "grade"}
    assert "The table: categories" in (run / "report.html").read_text()
    assert (run / "pairs.png").read_bytes().startswith(b"\x89PNG")
    assert "Column pairs: the training rows' strongest associations" in (run / "report.html").read_text()
    for name in ("s.csv", "s.parquet"):
        assert cli(["sample", str(run), "-n", "300", "-o", str(tmp_path / name), "--quiet"]) == 0
    parquet = pd.read_parquet(tmp_path / "s.parquet")
    assert parquet["count"].dtype == "int64" and parquet["flag"].dtype == bool
    assert set(pd.read_csv(tmp_path / "s.csv")["kind"].dropna()) <= {"a", "b", "c"}
    assert cli(["sample", str(run), "-n", "10", "-o", str(tmp_path / "s.npy"), "--quiet"]) == 1
    assert ".npy holds numbers only" in capsys.readouterr().err
    assert not (tmp_path / "s.npy").exists()


def test_columns_the_model_was_not_trained_on_pass_through_impute_and_score(tmp_path):
    """An identifier beside the model's columns comes back in its place, unchanged."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(300)], "a": rng.normal(size=300),
                          "b": rng.normal(size=300)})
    sd.fit(frame[["a", "b"]], epochs=1, out=tmp_path / "run", progress=False, num_samples=0)
    gaps = frame.head(20).copy()
    gaps.loc[::3, "b"] = np.nan
    filled = sd.load(tmp_path / "run").impute(gaps, draws=2)
    assert list(filled.columns) == ["draw", "id", "a", "b"] and not filled["b"].isna().any()
    assert filled["id"].tolist() == gaps["id"].tolist() * 2
    gaps.to_csv(tmp_path / "gaps.csv", index=False)
    for command in (["impute", str(tmp_path / "run")], ["score", str(tmp_path / "run")]):
        out = tmp_path / f"{command[0]}.csv"
        assert cli([*command, "--data", str(tmp_path / "gaps.csv"), "-o", str(out)]) == 0
        written = pd.read_csv(out)
        assert list(written.columns[:3]) == ["id", "a", "b"] and written["id"].tolist() == gaps["id"].tolist()


def test_animate_follows_a_tables_numeric_columns_gaps_included(tmp_path, monkeypatch, capsys):
    from simple_diffusion.evaluation import plots

    drawn = {}
    original = plots.animate_reverse_process

    def spy(frames, levels, columns, path, progress):
        drawn["columns"], drawn["first"], drawn["final"] = columns, frames[0], frames[-1]
        original(frames, levels, columns, path, progress=progress)

    monkeypatch.setattr(plots, "animate_reverse_process", spy)
    frame = mixed_frame(300)[["kind", "mass", "count", "flag"]]  # mass has gaps
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert cli(["train", str(tmp_path / "run"), "--data", str(tmp_path / "t.csv"), "--steps", "300",
                "-n", "0", "--quiet"]) == 0
    assert cli(["animate", str(tmp_path / "run"), "-o", str(tmp_path / "a.gif"), "-n", "300",
                "--num-steps", "4"]) == 0
    assert drawn["columns"] == ["mass", "count"] and drawn["final"].shape == (300, 2)
    # The noise shows: the first frame's counts are not rounded nor kept within the training
    # range (they were, and the frames looked like samples from the first); the samples are.
    counts, low, high = drawn["first"][:, 1], frame["count"].min(), frame["count"].max()
    assert (counts != np.round(counts)).mean() > 0.9 and ((counts < low) | (counts > high)).any()
    final = drawn["final"][:, 1]
    assert np.array_equal(final, np.round(final)) and low <= final.min() and final.max() <= high
    assert (tmp_path / "a.gif").read_bytes()[:3] == b"GIF"
    labels = mixed_frame(300)[["kind", "flag"]].dropna()
    labels.to_csv(tmp_path / "labels.csv", index=False)
    assert cli(["train", str(tmp_path / "labels"), "--data", str(tmp_path / "labels.csv"), "--steps", "50",
                "-n", "0", "--quiet"]) == 0
    capsys.readouterr()
    assert cli(["animate", str(tmp_path / "labels"), "-o", str(tmp_path / "b.gif")]) == 1
    assert "every column of this model is categorical" in capsys.readouterr().err


def test_drop_missing_says_how_many(tmp_path, capsys):
    data = tmp_path / "table.csv"
    mixed_frame(200).to_csv(data, index=False)
    assert cli(["train", str(tmp_path / "run"), "--data", str(data), "--drop-missing", "--epochs", "1",
                "-n", "0"]) == 0
    dropped = mixed_frame(200).isna().any(axis=1).sum()
    assert f"dropped {dropped} rows with missing cells" in capsys.readouterr().err
    model = sd.load(tmp_path / "run")  # learns no gaps: no indicators, labels never missing
    assert not model.encoder.missing_numeric and not model.encoder.missing_category
    assert not model.sample(300, seed=0).isna().any().any()


def test_a_table_run_resumes_and_evaluates_with_its_kinds(tmp_path):
    """The split records the schema; a file is re-read with the run's kind overrides, so the
    codes evaluation compares are the ones the model learnt."""
    data = tmp_path / "table.csv"
    mixed_frame(200).to_csv(data, index=False)
    run = tmp_path / "run"
    sd.fit(str(data), out=run, config={"data": {"categorical": ["count"]}, "train": {"epochs": 2}},
           progress=False, num_samples=0)
    model = sd.fit(None, out=run, resume=True, epochs=4, progress=False, num_samples=500,
                   likelihood_rows=0)
    assert model.schema[1].kind == "categorical" and model.config.train.epochs == 4
    metrics = json.loads((run / "metrics.json").read_text())
    assert "count" in {c["column"] for c in metrics["table"]["categories"]}
    frame_run = tmp_path / "frame-run"
    sd.fit(mixed_frame(200), out=frame_run, epochs=2, progress=False, num_samples=0)
    assert isinstance(sd.load(frame_run).sample(3, seed=0), pd.DataFrame)
    result = sd.evaluate_run(frame_run, n=500, likelihood_rows=0)
    assert result["table"]["missing"] and 0 <= result["memorisation"]["share"] <= 1
    assert 0 < result["table"]["sdmetrics_quality"] <= 1  # the test extra installs SDMetrics
    assert 0 < result["table"]["sdmetrics_quality_floor"] <= 1


def test_given_validation_rows_are_held_out_and_share_the_labels():
    frame = mixed_frame(300)
    train, held_out = frame.iloc[:250], frame.iloc[250:]
    data = sd.training_data(train, validation=held_out)
    assert len(data.train) == 250 and len(data.val) == 50
    assert np.array_equal(np.isnan(data.val), held_out.isna().to_numpy())


def test_a_table_of_constant_columns_is_refused_even_when_kept(tmp_path):
    with pytest.raises(UserError, match="every column is constant"):
        sd.fit(pd.DataFrame({"a": [1.0] * 40}), config={"data": {"keep_constant": True}}, progress=False)


def test_the_printed_table_shows_a_many_category_column_by_its_furthest_categories():
    from simple_diffusion.evaluation import metrics

    rng = np.random.default_rng(0)
    names = ["x", *(f"zip=Z{i:02d}" for i in range(20)), "y"]
    reference, train = rng.random((400, 22)), rng.random((400, 22))
    samples = rng.random((400, 22))
    samples[:, 7] += 5  # zip=Z06 far off: shown
    result = metrics.evaluate(samples, reference, names, train=train, two_sample_tests=False)
    lines = metrics.format_table(result).splitlines()
    shown = [line.split()[0] for line in lines[2:] if line.split()[0].startswith("zip=")]
    assert len(shown) == metrics.CATEGORY_ROWS_SHOWN and "zip=Z06" in shown
    assert any("12 more categories of zip" in line for line in lines)
    assert lines[2].startswith("x ") and any(line.startswith("y ") for line in lines)
    assert len(result["columns"]) == 22  # metrics.json keeps every row
    from simple_diffusion.evaluation import report

    page = report._metrics_table(result)  # the report folds them alike
    assert "12 more categories of zip" in page and page.count("<th>zip=") == 8


def test_the_printed_table_keeps_large_values_apart():
    from simple_diffusion.evaluation import metrics

    rng = np.random.default_rng(0)
    reference, train, samples = (rng.normal(3e5, 4e4, (60, 2)) for _ in range(3))  # longley's GNP
    lines = metrics.format_table(metrics.evaluate(samples, reference, ["GNP", "POP"], train=train,
                                                  two_sample_tests=False)).splitlines()
    assert lines[1].split() == ["column", "W1", "KS", "W1", "floor", "KS", "floor", "W1", "ratio"]
    for line in lines[2:4]:
        assert len(line.split()) == 6 and all(float(value) >= 0 for value in line.split()[1:])


@pytest.mark.parametrize("categories, bars", [(5, True), (40, False)])
def test_a_category_panel_has_bars_or_for_many_categories_a_dot_each(categories, bars):
    import matplotlib.pyplot as plt

    from simple_diffusion.evaluation import plots

    rng = np.random.default_rng(0)
    shares = [rng.dirichlet(np.ones(categories + 1)) for _ in range(2)]
    fig, ax = plt.subplots()
    plots._category_panel(ax, [f"c{k}" for k in range(categories)] + ["(missing)"], shares)
    assert (len(ax.patches) == 2 * (categories + 1)) == bars
    assert bars or ax.collections[0].get_offsets().shape == (categories + 1, 2)
    plt.close(fig)


def test_a_date_given_beyond_the_training_range_keeps_its_place_in_the_cycles():
    """The calendar terms of dates beyond the training rows' last one are those of their own
    day (a date clipped into the range would fall on the last day's phases)."""
    model = sd.fit(weekend_sales(100), condition=["day"], steps=1, num_samples=0, likelihood_rows=0,
                   progress=False)
    days = pd.Series(pd.to_datetime(["2022-02-01", "2025-06-07", "2019-12-25"]))
    z, _ = model.encoder.known(torch.as_tensor(model.rows(pd.DataFrame({"day": days, "sales": np.nan}))))
    terms = model.condition.calendars[0]
    assert model.schema[0].cycles == [365.2425, 7.0]  # 100 days: a fair part of a year's phases
    angles = np.outer((days - pd.Timestamp("1970-01-01")).dt.days, 2 * np.pi / np.array([365.2425, 7.0]))
    np.testing.assert_allclose(terms(z[:, model.condition.coordinates]).numpy(),
                               np.c_[np.sin(angles), np.cos(angles)], atol=1e-9)


def test_the_pairs_drawn_are_the_most_associated_in_the_training_rows():
    """mass follows kind (b is 3 higher: a correlation ratio near 0.8), the other pairs are
    independent: that pair is drawn first; a table of one column has no pair to draw."""
    from simple_diffusion.evaluation import plots

    frame = mixed_frame(400)
    schema = detect(frame)
    values = to_values(frame, schema)
    names = [c.name for c in schema]
    first = plots.strongest_pairs(values, schema)[0]
    assert {names[first[0]], names[first[1]]} == {"mass", "kind"}
    assert len(plots.strongest_pairs(values, schema, count=100)) == 10  # every pair of 5 columns
    assert plots.pairs_plot(values[:50], values, schema).startswith(b"\x89PNG")
    assert plots.pairs_plot(values[:, :1], values[:, :1], schema[:1]) is None


def test_a_relation_that_is_not_a_line_is_among_the_pairs_drawn():
    """A reading that swings three times over the dates has a Pearson correlation near 0 with
    them; the deciles of the dates explain most of it, so that pair comes first."""
    from simple_diffusion.evaluation import plots

    rng = np.random.default_rng(0)
    t = rng.uniform(0, 1, 600)
    wave = np.cos(6 * np.pi * t) + 0.2 * rng.normal(size=600)
    frame = pd.DataFrame({"t": t, "noise": rng.normal(size=600), "wave": wave,
                          "kind": rng.choice(["a", "b"], 600)})
    schema = detect(frame)
    values = to_values(frame, schema)
    assert abs(np.corrcoef(t, frame["wave"])[0, 1]) < 0.2
    assert plots.strongest_pairs(values, schema)[0] == (0, 2)
    deciles = np.searchsorted(np.quantile(t, np.linspace(0.1, 0.9, 9)), t, side="right")
    assert plots._decile_ratios(values[:, :3])[0, 2] == pytest.approx(
        tabular.correlation_ratio(deciles, wave), abs=1e-9)  # the matrix form, against one pair's


def test_the_pairs_of_a_large_table_are_ranked_and_drawn_on_a_subset(monkeypatch):
    from simple_diffusion.evaluation import plots

    frame = mixed_frame(3000)
    schema = detect(frame)
    values = to_values(frame, schema)
    seen = []
    ranked = plots.strongest_pairs
    monkeypatch.setattr(plots, "strongest_pairs",
                        lambda rows, *args: seen.append(len(rows)) or ranked(rows, *args))
    monkeypatch.setattr(plots, "PAIR_ROWS", 500)
    assert plots.pairs_plot(values, values, schema).startswith(b"\x89PNG") and seen == [500]


@pytest.mark.parametrize("columns", [1, 3])
def test_histograms_of_a_tiny_table_draw_without_dividing_by_zero(columns):
    """A 3-row CSV printed "warning: invalid value encountered in divide": its one held-out row
    fell outside the plot's range, and a histogram of no values scaled to unit area is 0 / 0."""
    from simple_diffusion.evaluation import plots

    rng = np.random.default_rng(0)
    samples, data = rng.normal(size=(2000, columns)), rng.normal(size=(2, columns))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = plots.distribution_plot(samples, data, [f"x{j}" for j in range(columns)],
                                        reference=np.full((1, columns), 50.0))
    assert image.startswith(b"\x89PNG")
