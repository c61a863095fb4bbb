"""Every input format, and every bad input, with the message a user should see."""

import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simple_diffusion import UserError
from simple_diffusion.data import io
from simple_diffusion.data.columns import Column, describe, to_frame, to_values


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    return rng.normal(size=(50, 3)) * [1, 10, 100]


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".tsv", ".parquet", ".xlsx", ".csv.gz", ".tsv.bz2",
                                    ".csv.xz", ".txt", ".dat.gz", ".feather", ".json", ".jsonl", ".jsonl.gz",
                                    ".json.bz2"])
def test_write_then_read_round_trip(tmp_path, table, suffix):
    path = str(tmp_path / f"data{suffix}")
    io.write_table(path, table, ["a", "b", "c"])
    read = io.read_table(path)
    assert read.values.shape == (50, 3)
    assert np.allclose(read.values, table, rtol=1e-8)
    if suffix != ".npy":
        assert read.columns == ["a", "b", "c"]
    if suffix == ".tsv":  # separated by tabs
        assert Path(path).read_text().startswith("a\tb\tc\n")


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson", ".json", ".feather", ".arrow"])
def test_json_lines_and_feather_tables_come_back_with_their_kinds_labels_gaps_and_last_bits(tmp_path, suffix):
    """A web export's JSON Lines or array of objects (a key an object lacks, or null, is a missing
    cell) and pandas' or R's Feather: each kind found, and a table written back reads as the same
    cells."""
    frame = pd.DataFrame({"kind": ["a", None, "b", "a"],
                          "x": [0.1 + 0.2, np.nan, 3.1257302210933937e-09, -2.5],
                          "count": [1, 2, 3, 4], "ok": [True, False, True, True],
                          "day": ["2020-01-31", "2020-02-01", "2020-02-02", "2020-02-03"]})
    path = str(tmp_path / f"t{suffix}")
    if suffix in (".jsonl", ".ndjson", ".json"):  # as a web API writes it: a missing cell's key left out
        lines = ['{"kind": "a", "x": 0.30000000000000004, "count": 1, "ok": true, "day": "2020-01-31"}',
                 '{"x": null, "count": 2, "ok": false, "day": "2020-02-01"}',
                 '{"kind": "b", "x": 3.1257302210933937e-09, "count": 3, "ok": true, "day": "2020-02-02"}',
                 '{"kind": "a", "x": -2.5, "count": 4, "ok": true, "day": "2020-02-03"}']
        if suffix == ".json":
            Path(path).write_text("[" + ", ".join(lines) + "]")
        else:
            Path(path).write_text("\ufeff" + "\n\n".join(lines) + "\n")  # a byte-order mark, a blank line
    else:
        frame.to_feather(path)
    table = io.read_table(path)
    assert [c.kind for c in table.schema] == ["categorical", "numeric", "integer", "categorical", "integer"]
    assert table.schema[4].time_format == "%Y-%m-%d"
    cells = to_frame(table.values, table.schema)
    assert cells["x"].tolist()[::2] == [0.30000000000000004, 3.1257302210933937e-09]  # to the last bit
    assert cells["kind"].isna().tolist() == [False, True, False, False] and np.isnan(table.values[1, 1])
    io.write_table(path, cells, schema=table.schema)
    again = io.read_table(path)
    pd.testing.assert_frame_equal(to_frame(again.values, again.schema), cells)
    if "json" in suffix:  # strict JSON, as other tools read it: null, never NaN
        def refuse(constant):
            raise ValueError(constant)

        text = Path(path).read_text()
        rows = (json.loads(text, parse_constant=refuse) if suffix == ".json"
                else [json.loads(line, parse_constant=refuse) for line in text.splitlines()])
        assert rows[1] == {"kind": None, "x": None, "count": 2, "ok": False, "day": "2020-02-01"}


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_a_json_tables_numbers_written_as_text_are_read_as_a_csvs_and_written_back_so(tmp_path, suffix):
    """Web APIs often write every number as a string: such a column is typed as a CSV's text is
    (numbers, whole numbers zero-padded, amounts with a currency sign) and written back as it
    was written; a word among them is named by its object, counted from 1."""
    rows = [{"mass": "1.5", "postcode": "02134", "price": "$1,200.50", "kind": "a"},
            {"mass": "2.25", "postcode": "10001", "price": "$3.00", "kind": "b"},
            {"mass": None, "postcode": "00501", "price": "$45.10", "kind": "a"}]
    path = tmp_path / f"t{suffix}"
    path.write_text(json.dumps(rows) if suffix == ".json" else "".join(json.dumps(r) + "\n" for r in rows))
    table = io.read_table(str(path))
    assert [c.kind for c in table.schema] == ["numeric", "integer", "numeric", "categorical"]
    assert table.values[:, 1].tolist() == [2134, 10001, 501] and table.values[0, 2] == 1200.5
    out = tmp_path / f"out{suffix}"
    io.write_table(str(out), to_frame(table.values, table.schema), schema=table.schema)
    text = out.read_text()
    back = json.loads(text) if suffix == ".json" else [json.loads(line) for line in text.splitlines()]
    assert [r["postcode"] for r in back] == ["02134", "10001", "00501"]
    assert [r["price"] for r in back] == ["$1,200.50", "$3.00", "$45.10"]
    assert [r["mass"] for r in back] == [1.5, 2.25, None]
    rows[2]["mass"] = "about 3"
    path.write_text(json.dumps(rows) if suffix == ".json" else "".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(UserError, match=r"column 'mass' has a non-numeric value 'about 3' at row 3"):
        io.read_table(str(path))


def test_an_excel_sheet_reads_with_its_kinds_and_rows_come_back_in_its_types(tmp_path):
    """Spreadsheets are where many tables live: the first sheet is read (a warning names the
    others), cells keep Excel's types (dates as dates, whole numbers with gaps as integers), and a
    stray word among numbers is named by its row of the sheet."""
    frame = pd.DataFrame({"when": pd.date_range("2024-01-01", periods=6, freq="D"),
                          "mass": [1.5, 2.25, 3.0, 4.5, 5.0, 6.0], "count": [1, None, 3, 4, None, 6],
                          "ok": [True, False, True, True, False, True], "kind": list("abcabc")})
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as writer:
        frame.to_excel(writer, index=False, sheet_name="Data")
        frame.to_excel(writer, index=False, sheet_name="Notes")
    with pytest.warns(UserWarning, match=rf"has 2 sheets: read the first, 'Data' \(not 'Notes'; name another "
                                         rf"after a #, as in '{re.escape(str(path))}#Notes'\)"):
        table = io.read_table(str(path))
    assert [c.kind_name for c in table.schema] == ["datetime in days", "numeric", "integer", "categorical",
                                                   "categorical"]
    out = tmp_path / "out.xlsx"
    io.write_table(str(out), to_frame(table.values, table.schema), schema=table.schema)
    back = pd.read_excel(out)
    pd.testing.assert_frame_equal(back, frame.astype({"count": "float64"}), check_dtype=False)
    assert back["when"].dtype.kind == "M"  # dates written as Excel dates, not text
    frame["mass"] = frame["mass"].astype(object)
    frame.loc[3, "mass"] = "n.a."
    frame.to_excel(path, index=False)
    with pytest.raises(UserError, match=r"column 'mass' has a non-numeric value 'n\.a\.' at row 5"):
        io.read_table(str(path))


def test_a_sheet_is_named_after_a_hash_as_excels_links_name_it(tmp_path):
    """A workbook's second sheet could only be read by saving it as a file of its own."""
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"a": [1.5, 2.5, 3.5]}).to_excel(writer, index=False, sheet_name="Notes")
        pd.DataFrame({"mass": [1.5, 2.5, 3.5, 4.5], "kind": list("abab")}).to_excel(
            writer, index=False, sheet_name="Prices #2")  # a hash in a sheet's name, as Excel allows
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning about the other sheets: this one was named
        table = io.read_table(f"{path}#Prices #2")
    assert table.columns == ["mass", "kind"] and table.values.shape == (4, 2)
    with pytest.raises(UserError, match=r"book\.xlsx has no sheet 'Prices'; its sheets are 'Notes', "
                                        r"'Prices #2' \(did you mean 'Prices #2'\?\)$"):
        io.read_table(f"{path}#Prices")
    with pytest.raises(UserError, match=r"'Prices #2' \(did you mean 'Notes'\?\)$"):
        io.read_table(f"{path}#notes")
    with pytest.raises(UserError, match=r"its sheets are 'Notes', 'Prices #2'$"):
        io.read_table(f"{path}#Sheet1")
    with pytest.raises(UserError, match=r"data file not found: .*other\.xlsx$"):
        io.read_table(f"{tmp_path / 'other.xlsx'}#Notes")
    odd = tmp_path / "odd.xlsx#1"  # a file whose own name holds a hash is that file
    pd.DataFrame({"b": [1.0, 2.0]}).to_csv(odd, index=False)
    assert io.workbook_sheet(str(odd)) == (str(odd), None)
    with pytest.raises(UserError, match=r"written as a workbook of one sheet; name the file alone "
                                        r"\(.*out\.xlsx\)"):
        io.check_writable(f"{tmp_path / 'out.xlsx'}#Samples", table.schema)


def test_what_an_excel_sheet_cannot_hold_is_refused_before_any_work(tmp_path, monkeypatch):
    zoned = Column("t", "integer", "datetime64[ns, Europe/Paris]", time_unit="h", time_origin="2024-01-01")
    with pytest.raises(UserError, match="Excel holds no time zones, and column 't' has one"):
        io.check_output(str(tmp_path / "s.xlsx"), [zoned], 10)
    monkeypatch.setattr(io, "EXCEL_ROWS", 100)
    with pytest.raises(UserError, match=r"an Excel sheet holds 99 rows below its header, not 100; write"):
        io.check_output(str(tmp_path / "s.xlsx"), [Column("x", "numeric")], 100)
    io.check_output(str(tmp_path / "s.xlsx"), [Column("x", "numeric")], 99)


def test_numbers_are_read_to_their_last_bit_with_gaps_and_spaces_too(tmp_path):
    """pandas' to_numeric rounded about a third of 17-digit cells (repr's) to a neighbouring
    float, so score and impute wrote a user's 3.1257302210933937e-09 as ...933e-09."""
    exact = np.random.default_rng(0).normal(size=(300, 2)) * [1e-9, 1e12]
    cells = [[repr(float(v)) for v in row] for row in exact]
    cells[7][1] = ""  # a gap: the column is read by the other route
    cells[8][1] = f" {cells[8][1]} "
    path = tmp_path / "exact.csv"
    path.write_text("tiny,huge\n" + "".join(f"{a},{b}\n" for a, b in cells))
    read = io.read_table(str(path)).values
    exact[7, 1] = np.nan
    np.testing.assert_array_equal(read, exact)  # equal, not close


def test_fortran_double_precision_exponents_are_numbers(tmp_path):
    """Fortran programs print 1.257302D+01: the file's first row was taken for a header and every
    column refused as an identifier."""
    (tmp_path / "run.dat").write_text("  1.257302D+01  -1.321049D-01\n  6.404227D+01  1.049001d-01\n"
                                      "  .5D0  2.0D+00\n")
    table = io.read_table(str(tmp_path / "run.dat"))
    assert table.columns == ["0", "1"]
    np.testing.assert_array_equal(table.values, [[12.57302, -0.1321049], [64.04227, 0.1049001], [0.5, 2.0]])
    (tmp_path / "t.csv").write_text("energy,angle\n,2.0D-1\n1.5D+00,-\n2.5,3.5D-01\n")  # gaps first
    np.testing.assert_array_equal(io.read_table(str(tmp_path / "t.csv")).values,
                                  [[np.nan, 0.2], [1.5, np.nan], [2.5, 0.35]])


def test_compressed_csv_is_read_and_written_as_its_extension_says(tmp_path):
    """Downloads come as .csv.gz or .zip: refused before as "unsupported file type .gz"."""
    import gzip
    import zipfile

    text = "# from a logger\nmass,kind\n1.5,a\n2.5,b\n3.5,a\n"
    with zipfile.ZipFile(tmp_path / "t.csv.zip", "w") as archive:
        archive.writestr("t.csv", text)
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress(text.encode()))
    for name in ("t.csv.zip", "t.csv.gz"):
        table = io.read_table(str(tmp_path / name))
        assert table.columns == ["mass", "kind"] and table.values.tolist() == [[1.5, 0], [2.5, 1], [3.5, 0]]
    frame = to_frame(table.values, table.schema)
    io.write_table(str(tmp_path / "out.csv.gz"), frame)
    first = (tmp_path / "out.csv.gz").read_bytes()
    assert gzip.decompress(first).decode() == "mass,kind\n1.5,a\n2.5,b\n3.5,a\n"
    io.write_table(str(tmp_path / "out.csv.gz"), frame)  # the same rows, the same bytes
    assert (tmp_path / "out.csv.gz").read_bytes() == first
    with pytest.raises(UserError, match=r"out.csv.zip: a .zip is read, not written; write out.csv.gz"):
        io.check_writable(str(tmp_path / "out.csv.zip"), table.schema)
    with pytest.raises(UserError, match=r"unsupported file type .gz; .* \(text tables also compressed"):
        io.read_table(str(tmp_path / "x.npy.gz"))
    # A warehouse's export: JSON Lines in a zip archive, read as the CSV was.
    with zipfile.ZipFile(tmp_path / "t.jsonl.zip", "w") as archive:
        archive.writestr("t.jsonl", "".join(f'{{"mass": {m}, "kind": "{k}"}}\n' for m, k in
                                            ((1.5, "a"), (2.5, "b"), (3.5, "a"))))
    assert io.read_table(str(tmp_path / "t.jsonl.zip")).values.tolist() == [[1.5, 0], [2.5, 1], [3.5, 0]]


def test_numpys_text_files_are_read_and_written_as_savetxt_and_loadtxt_do(tmp_path):
    """Students and physicists keep arrays in np.savetxt's .txt files (spaces between cells, the
    names in a "#" line): refused before as an unsupported file type."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3))
    x[5, 1] = np.nan
    np.savetxt(tmp_path / "phys.txt", x, header="energy momentum angle")
    table = io.read_table(str(tmp_path / "phys.txt"))
    assert table.columns == ["energy", "momentum", "angle"]
    np.testing.assert_allclose(table.values, x)
    out = tmp_path / "out.txt"
    io.write_table(str(out), to_frame(table.values, table.schema), schema=table.schema)
    assert out.read_text().startswith("# energy momentum angle\n")
    np.testing.assert_allclose(np.loadtxt(out), x, rtol=1e-8)  # NumPy reads it back, nan and all
    np.savetxt(tmp_path / "bare.dat", x[:, :2])  # no names: numbered
    assert io.read_table(str(tmp_path / "bare.dat")).columns == ["0", "1"]
    (tmp_path / "short.txt").write_text("# a b\n1 2\n3\n4 5\n")
    with pytest.raises(UserError, match=r"line 3 has 1 cell where the others have 2 \(a missing cell"):
        io.read_table(str(tmp_path / "short.txt"))
    (tmp_path / "comma.txt").write_text("a,b\n1,2\n3,4\n")  # CSV under another name
    assert io.read_table(str(tmp_path / "comma.txt")).values.tolist() == [[1, 2], [3, 4]]
    labelled = pd.DataFrame({"kind": ["a b", "c"], "weight kg": [1.5, 2.5]})  # spaces: quoted
    io.write_table(str(out), labelled)
    assert io.read_table(str(out)).columns == ["kind", "weight kg"]
    np.testing.assert_allclose(io.read_table(str(out)).values[:, 1], [1.5, 2.5])


def test_a_csv_of_numbers_between_spaces_and_names_in_single_quotes_is_read_as_its_columns(tmp_path):
    """statsmodels ships such files (spector.csv: 'OBS' 'GPA' ... over "1 2.66 20 0 0"; anes96.csv
    tab-separated under 'popul' 'TVnews'): read as one column of unique text, they were refused as
    an identifier with --columns '' suggested, and quoted names had to be typed with their quotes."""
    (tmp_path / "spector.csv").write_text("'OBS' 'GPA' 'GRADE'\n1 2.66 0\n2  2.89 1\n3 3.28 0\n")
    table = io.read_table(str(tmp_path / "spector.csv"))
    assert table.columns == ["OBS", "GPA", "GRADE"]
    assert table.values.tolist() == [[1, 2.66, 0], [2, 2.89, 1], [3, 3.28, 0]]
    (tmp_path / "bare.csv").write_text("-0.0031 0.083\n0.0189 0.083\n")  # no header: numbered
    assert io.read_table(str(tmp_path / "bare.csv")).columns == ["0", "1"]
    (tmp_path / "anes.csv").write_text("'popul'\t'vote'\n0\t1\n190\t0\n")
    assert io.read_table(str(tmp_path / "anes.csv")).columns == ["popul", "vote"]
    # One column of text with spaces stays one column; a name quoted on one side stays as written.
    (tmp_path / "names.csv").write_text("name\nAda Lovelace\nAlan Turing\nAda Lovelace\n")
    assert io.read_table(str(tmp_path / "names.csv")).columns == ["name"]
    (tmp_path / "odd.csv").write_text("'a,b'\n1,2\n3,4\n")
    assert io.read_table(str(tmp_path / "odd.csv")).columns == ["'a", "b'"]


def test_npy_one_dimensional_becomes_one_column(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.arange(10.0))
    assert io.read_table(str(path)).values.shape == (10, 1)


def test_csv_without_header(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("1,2\n3,4\n5,6\n")
    read = io.read_table(str(path))
    assert read.values.tolist() == [[1, 2], [3, 4], [5, 6]]
    assert read.columns == ["0", "1"]


def test_column_selection_by_name_and_index(tmp_path, table):
    path = str(tmp_path / "x.csv")
    io.write_table(path, table, ["a", "b", "c"])
    assert io.read_table(path, columns=["c", "a"]).columns == ["c", "a"]
    npy = str(tmp_path / "x.npy")
    np.save(npy, table)
    assert np.allclose(io.read_table(npy, columns=["2"]).values[:, 0], table[:, 2])


def bad(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        np.save(path, content)
    return str(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", "", "empty"),
        ("words.csv", "a,b\n1,2\n3,x\n4,5\n", r"column 'b' has a non-numeric value 'x' at line 3"),
        ("inf.csv", "a\n1\ninf\n-inf\n", r"2 infinite values, the first at line 3 in column 'a'"),
        ("empty_column.csv", "a,b\n1,\n3,\n", r"column 'b' has no values"),
        ("one_row.csv", "a,b\n1,2\n", "at least 2 rows"),
        ("header_only.csv", "a,b\n", "at least 2 rows"),
        ("ragged.csv", "1,2\n3,4,5\n", r"line 2 has 3 cells where the lines above have 2 \(a stray"),
        ("titled.csv", "Heights, 2024\n\na,b,c\n1,2,3\n", r"line 3 has 3 cells where the lines above have 2 "
                                                      r"\(a stray separator.* or a title above the header\?"),
        ("binary.csv", b"\xff\xfe\x00\x01garbage", "not a readable CSV|non-numeric|at least 2 rows"),
        ("inf.npy", np.array([1.0, np.inf, 3.0]), r"an infinite value at row 1"),
        ("cube.npy", np.zeros((2, 2, 2)), r"expected shape \(n,\) or \(n, d\)"),
        ("text.npy", np.array(["a", "b"]), "not real numbers"),
        ("complex.npy", np.array([1 + 2j, 3 + 0j]), "not real numbers"),
        ("truncated.npy",
         b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (100,), }",
         "cannot read|not a plain"),
        ("corrupt.parquet", b"PAR1 this is not parquet", "not a readable Parquet"),
        ("corrupt.feather", b"ARROW1 this is not arrow", r"not a readable Feather \(Arrow\) file"),
        ("broken.jsonl", '{"a": 1, "b": 2}\n{"a": 3, "b": \n',
         r"not JSON Lines \(line 2\): each line must be one JSON object"),
        ("array.jsonl", '[{"a": 1}, {"a": 2}]\n', r"not JSON Lines \(line 1\)"),
        ("nested.jsonl", '{"a": 1, "b": {"c": 2}}\n{"a": 3, "b": {"c": 4}}\n',
         r"column 'b' holds nested JSON \(objects or lists\).*pandas.json_normalize"),
        ("data.yaml", "a: [1, 2]\n", "unsupported file type .yaml"),
        ("scalar.json", "3\n", r"not a JSON table: an array of objects"),
        # Numbers in two ways (a decimal comma, a decimal point): which is meant is for the user.
        ("decimal_commas.csv", "a;b\n1,5;2\n2.5;3\n3,1;4\n",
         r"column 'a' has a non-numeric value '1,5' at line 2 \(a decimal comma\?"),
        ("thousands.csv", 'a,b\n"1,234.50",2\n"2,345.00",3\n"12.000,25",4\n',
         r"column 'a' has a non-numeric value '1,234.50' at line 2 \(a thousands separator\?"),
        ("censored.csv", "a,b\n0.5,1\n<0.01,2\n1.5,3\n",
         r"'<0.01' at line 3 \(a value beyond a detection limit or a top code\? write a number, or leave"),
        ("topcoded.csv", "age,b\n35,1\n90+,2\n41,3\n", r"'90\+' at line 3 \(a value beyond a detection"),
        ("european.csv", "a;b\n1.234,5;2\n2.345,5;3\n1,234.5;4\n",
         r"'1.234,5' at line 2 \(a decimal comma or thousands separators\?"),
    ],
)
@pytest.mark.filterwarnings("ignore:.*is not UTF-8")  # binary.csv: read as Windows-1252, then refused
def test_bad_input_is_one_clear_error(tmp_path, name, content, message):
    with pytest.raises(UserError, match=message):
        io.read_table(bad(tmp_path, name, content))


def test_comment_lines_above_the_header_are_skipped_and_lines_still_counted(tmp_path):
    """Instruments and NumPy's savetxt open a file with "#" lines: the header was read from them."""
    path = tmp_path / "t.csv"
    path.write_text("# sensor 12\n# units: K, Pa\ntemp;pressure\n300.5;101\n301.5;99\n")
    table = io.read_table(str(path))
    assert table.columns == ["temp", "pressure"] and table.values.tolist() == [[300.5, 101], [301.5, 99]]
    path.write_text("# sensor 12\ntemp,pressure\n300.5,101\n301.5,x\n302.5,98\n")
    with pytest.raises(UserError, match="column 'pressure' has a non-numeric value 'x' at line 4"):
        io.read_table(str(path))


def test_a_title_above_the_header_is_skipped_with_a_warning(tmp_path):
    """Spreadsheet exports put a title above the table: its header was read as a row of data."""
    import openpyxl

    path = tmp_path / "t.csv"
    path.write_text("Heights of 2024\n\nname,height\na,170.5\nb,x\n")
    with pytest.warns(UserWarning, match=r"skipped 1 line of one cell above the header \(a title\?\): "
                                         r"'Heights of 2024'"), \
            pytest.raises(UserError, match="column 'height' has a non-numeric value 'x' at line 5"):
        io.read_table(str(path))
    path.write_text("height\n170.5\n160.5\n")  # one column: its header is no title
    assert io.read_table(str(path)).columns == ["height"]
    path.write_text('city\n"Paris, France"\nRome\n"Paris, France"\n')  # a comma inside quotes
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = io.read_table(str(path))
    assert table.columns == ["city"] and table.values[:, 0].tolist() == [0, 1, 0]
    path.write_text("5\n1,2\n3,4\n")  # a number is a row, not a title
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserError, match="line 2 has 2 cells where the lines above have 1"):
            io.read_table(str(path))
    book = openpyxl.Workbook()
    for row in (["Heights, 2024"], [], ["name", "height"], ["a", 170.5], ["b", 160.5], ["c", "x"]):
        book.active.append(row)
    book.save(tmp_path / "t.xlsx")
    with pytest.warns(UserWarning, match="skipped 1 row of one cell above the header"), \
            pytest.raises(UserError, match="column 'height' has a non-numeric value 'x' at row 6"):
        io.read_table(str(tmp_path / "t.xlsx"))


def test_a_csv_in_windows_1252_reads_with_its_labels_and_a_warning(tmp_path):
    """Excel's exports in Western Europe: refused before as 'not a readable CSV'."""
    path = tmp_path / "cities.csv"
    path.write_bytes("city,x\nZürich,1\nGenève,2\nZürich,3\n".encode("cp1252"))
    with pytest.warns(UserWarning, match="not UTF-8: read as Windows-1252"):
        table = io.read_table(str(path))
    assert sorted(table.schema[0].categories) == ["Genève", "Zürich"]


@pytest.mark.parametrize("delimiter", [",", "\t", ";", "|"])
def test_a_csv_separated_by_tabs_semicolons_or_bars_reads_as_with_commas(tmp_path, delimiter):
    text = "a,b,name\n1.5,2,x y\n2.5,3,z\n".replace(",", delimiter)
    table = io.read_table(bad(tmp_path, "t.csv", text))
    assert table.columns == ["a", "b", "name"] and table.values[:, :2].tolist() == [[1.5, 2], [2.5, 3]]


@pytest.mark.parametrize("cells, kind", [
    (["7", " 8 ", "NA", "-3", "+4"], "integer"),  # whole numbers as written, spaces and gaps aside
    (["7.0", "8", "9"], "numeric"),  # whole values, but one written as a decimal
    (["1e3", "2", "3"], "numeric"),
    (["0.5", "2", "3"], "numeric"),
])
def test_a_column_is_integer_when_its_numbers_are_written_as_whole_numbers(tmp_path, cells, kind):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "".join(f"{cell},{k}.5\n" for k, cell in enumerate(cells)))
    schema = io.read_table(str(path)).schema
    assert schema[0].kind == kind and schema[1].kind == "numeric"


@pytest.mark.parametrize("cells, values, kind, separator", [
    (["$258.04", '"$2,331.78"', "-$5.00", ""], [258.04, 2331.78, -5.0, np.nan], "numeric", ","),
    (["12.5%", "3.0%", "100.0%"], [12.5, 3.0, 100.0], "numeric", ","),
    (["EUR 1.234,50", "EUR 17,00"], [1234.5, 17.0], "numeric", ";"),  # a decimal comma: ; as written
    (["171,3", "-0,5", "NA"], [171.3, -0.5, np.nan], "numeric", ";"),
    (["1 234,50 €", "17,00 €"], [1234.5, 17.0], "numeric", ";"),  # French: spaces group thousands
    (["1'234.5", "17.0"], [1234.5, 17.0], "numeric", ","),  # Swiss: apostrophes
    (["12 kg", "3 kg", "-20 kg"], [12, 3, -20], "integer", ","),
    (['"1,234"', "999", '"1,000,000"'], [1234, 999, 1e6], "integer", ","),
    (["01234", "98765", "00501"], [1234, 98765, 501], "integer", ","),  # postcodes keep their zeros
    (["12.50", "(3.25)", "0.00"], [12.5, -3.25, 0.0], "numeric", ","),  # an accountant's negatives
    (["$258.04", '"($2,331.78)"', "$5.00", ""], [258.04, -2331.78, 5.0, np.nan], "numeric", ","),
    (["$1.00", "$(2.50)"], [1.0, -2.5], "numeric", ","),
])
def test_numbers_written_with_a_currency_unit_separators_or_zeros_are_numbers_written_back_so(
        tmp_path, cells, values, kind, separator):
    """Spreadsheet exports write numbers as people read them: such a column was refused (decimal
    commas, thousands separators), or learnt as hundreds of labels ("$2,331.78"), or written
    back without its leading zeros. Now numbers, and samples are written as the data was."""
    text = f"a{separator}b\n" + "".join(f"{cell}{separator}{k}\n" for k, cell in enumerate(cells))
    path = tmp_path / "t.csv"
    path.write_text(text)
    table = io.read_table(str(path))
    assert table.schema[0].kind == kind
    np.testing.assert_allclose(table.values[:, 0], values)
    frame = to_frame(table.values, table.schema)  # in Python, numbers
    assert pd.api.types.is_numeric_dtype(frame["a"].dtype)
    out = tmp_path / "out.csv"
    io.write_table(str(out), frame, schema=table.schema)
    assert out.read_text() == text.replace("NA", "")
    # New rows (a condition, rows to fill) are read in the column's way, or as plain numbers.
    new = pd.DataFrame({"a": [cells[0].strip('"'), "7"], "b": ["1", "2"]})
    np.testing.assert_allclose(to_values(new, table.schema)[:, 0], [values[0], 7])


def test_an_accountants_negatives_are_shown_as_train_prints_them_and_given_either_way():
    """Parentheses are a negative number where the column's other numbers are plain; a column
    of nothing but "(1)", "(2)" stays labels, and parentheses beside minus signs are an error."""
    frame = pd.DataFrame({"a": ["$1,200.00", "($3.50)", "$0.25"]})
    frame.attrs["first_row"] = 2
    schema = io.from_frame(frame).schema
    assert describe(schema) == "a numeric (as $1,234.50, ($1,234.50))"
    given = pd.DataFrame({"a": ["($7.00)", "-7", "7"]})
    np.testing.assert_array_equal(to_values(given, schema)[:, 0], [-7.0, -7.0, 7.0])
    frame = pd.DataFrame({"a": ["(1)", "(2)", "(1)"]})
    frame.attrs["first_row"] = 2
    assert io.from_frame(frame).schema[0].kind == "categorical"
    frame = pd.DataFrame({"a": ["(5.00)", "-3.00", "2.00", "4.00"]})
    frame.attrs["first_row"] = 2
    with pytest.raises(UserError, match=r"column 'a' has a non-numeric value '\(5\.00\)' at line 2"):
        io.from_frame(frame)


def test_a_typographic_minus_and_a_spreadsheets_error_cells_are_read():
    """Copied from documents, -5.5 comes as "\u22125.5"; a spreadsheet writes #DIV/0! where a
    formula failed: both were "non-numeric values" to fix by hand."""
    frame = pd.DataFrame({"a": ["\u22125.5", "3.25", "#DIV/0!", "#VALUE!", "1"]})
    frame.attrs["first_row"] = 2
    values = io.from_frame(frame).values[:, 0]
    np.testing.assert_array_equal(values, [-5.5, 3.25, np.nan, np.nan, 1.0])


@pytest.mark.parametrize("codes", [["SKU001", "SKU002"], ["SKU 007", "SKU 010"], ["1.2.3", "1.2.4"],
                                   ["12+", "18+"]])
def test_codes_that_hold_digits_stay_labels(tmp_path, codes):
    """A product code is no amount in a currency, nor a version number one with separators."""
    path = tmp_path / "t.csv"
    path.write_text("code,x\n" + "".join(f"{codes[k % 2]},{k}.5\n" for k in range(6)))
    assert io.read_table(str(path)).schema[0].categories == codes


def test_a_cell_written_another_way_is_named_with_the_way_the_column_is_written(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('price,b\n$5.00,1\n"$1,250.00",2\n')
    schema = io.read_table(str(path)).schema
    with pytest.raises(UserError, match=r"given: column 'price' has a non-numeric value '5 EUR' at row 0 "
                                        r"\(its numbers are written as \$1,234.50\)"):
        to_values(pd.DataFrame({"price": ["5 EUR"], "b": ["1"]}), schema, "given")


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="data file not found"):
        io.read_table(str(tmp_path / "nope.csv"))


def test_columns_of_no_name_and_no_value_are_skipped_with_a_warning(tmp_path):
    """Spreadsheet exports often end every line in separators (`a,b,,`): the two empty columns
    were refused as "column 2 has no values". A named empty column is still refused (a year not
    filled in yet is the user's to leave out), and a column of no name with values is kept."""
    path = tmp_path / "export.csv"
    path.write_text("\ufeffa,b,,\r\n" + "".join(f"{k}.5,{k % 3},,\r\n" for k in range(30)))
    with pytest.warns(UserWarning, match=r"export\.csv: skipped 2 columns with neither a name nor a value"):
        table = io.read_table(str(path))
    assert table.columns == ["a", "b"] and table.values.shape == (30, 2)
    path.write_text("a,c\n" + "".join(f"{k}.5,\n" for k in range(30)))
    with pytest.raises(UserError, match=r"column 'c' has no values"):
        io.read_table(str(path))
    path.write_text("a,\n" + "".join(f"{k}.5,{k % 4}\n" for k in range(30)))
    assert io.read_table(str(path)).columns == ["a", "column 1"]


def test_unknown_column(tmp_path, table):
    path = str(tmp_path / "x.csv")
    io.write_table(path, table, ["a", "b", "c"])
    with pytest.raises(UserError, match="no column 'z'; columns are 'a', 'b', 'c'"):
        io.read_table(path, columns=["z"])
    with pytest.raises(UserError, match=r"no column 'B' \(did you mean 'b'\?\); columns are"):
        io.read_table(path, columns=["a", "B"])


def test_parquet_keeps_its_kinds_and_labels(tmp_path):
    path = tmp_path / "x.parquet"
    frame = pd.DataFrame({"a": [1.5, 2.0, None], "b": ["x", "y", "x"], "n": [3, 4, 5],
                          "flag": [True, False, True]})
    frame.to_parquet(path)
    table = io.read_table(str(path))
    assert [(c.name, c.kind) for c in table.schema] == [
        ("a", "numeric"), ("b", "categorical"), ("n", "integer"), ("flag", "categorical")]
    assert table.schema[1].categories == ["x", "y"] and table.schema[3].categories == [False, True]
    assert np.isnan(table.values[2, 0]) and table.values[:, 1].tolist() == [0, 1, 0]


def test_times_of_day_are_times_learnt_in_minutes_and_written_back_as_read(tmp_path):
    """A column of departure times ("13:55") was refused as "an identifier, or free text?"."""
    path = tmp_path / "trips.csv"
    path.write_text("depart,took,x\n13:55,0:53:00,1\n07:05,1:07:30,2\n,2:00:00,3\n22:40,0:05:00,4\n")
    table = io.read_table(str(path))
    assert [c.kind_name for c in table.schema[:2]] == ["time of day in minutes", "time of day in seconds"]
    assert table.schema[0].axis_label == "depart (minutes from 07:05:00)"
    np.testing.assert_array_equal(table.values[:, 0], [410, 0, np.nan, 935])
    frame = to_frame(table.values, table.schema)
    assert frame["depart"].tolist()[:2] == ["13:55", "07:05"] and frame["took"].tolist()[1] == "1:07:30"
    with pytest.raises(UserError, match=r"column 'depart' has '25:00' at row 0, which is not a time of day "
                                        r"written as %H:%M \(13:55\)$"):
        to_values(pd.DataFrame({"depart": ["25:00"], "took": ["0:10:00"], "x": ["1"]}), table.schema, "given")


def test_a_databases_decimals_are_numbers_and_its_dates_come_back_as_dates(tmp_path):
    """A Parquet DECIMAL (pandas reads Python Decimals) was refused as "numbers as text", and a
    DATE came back as text (a string column in Parquet)."""
    import datetime
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    days = [datetime.date(2024, 1, 1) + datetime.timedelta(days=7 * k) for k in range(5)] + [None]
    prices = [decimal.Decimal(p) for p in ("1.50", "22.25", "3.00", "40.75", "5.10")] + [None]
    pq.write_table(pa.table({"price": pa.array(prices, pa.decimal128(10, 2)),
                             "day": pa.array(days, pa.date32())}), tmp_path / "db.parquet")
    table = io.read_table(str(tmp_path / "db.parquet"))
    assert [c.kind_name for c in table.schema] == ["numeric", "datetime in days"]
    np.testing.assert_array_equal(table.values[:, 0], [1.5, 22.25, 3.0, 40.75, 5.1, np.nan])
    frame = to_frame(table.values, table.schema)
    assert frame["day"].tolist() == days and frame["price"].dtype == np.float64
    io.write_table(str(tmp_path / "back.parquet"), frame, schema=table.schema)
    assert pq.read_schema(tmp_path / "back.parquet").field("day").type == pa.date32()
    io.write_table(str(tmp_path / "back.csv"), frame, schema=table.schema)
    assert (tmp_path / "back.csv").read_text().splitlines()[1:3] == ["1.5,2024-01-01", "22.25,2024-01-08"]


DETECTOR = "id,energy,momentum,label\n1,2.5,1.0,x0\n2,3.5,1.5,x1\n3,1.5,0.5,x0\n"


def test_columns_not_picked_are_never_parsed(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(DETECTOR)
    table = io.read_table(str(path), columns=["energy", "momentum"])
    assert table.columns == ["energy", "momentum"]
    assert table.values.tolist() == [[2.5, 1.0], [3.5, 1.5], [1.5, 0.5]]


def test_text_columns_are_categories_and_an_identifier_is_refused_with_the_option_that_leaves_it_out(
        tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(DETECTOR)
    table = io.read_table(str(path))
    assert [c.kind for c in table.schema] == ["integer", "numeric", "numeric", "categorical"]
    rows = "".join(f"event-{k},{k % 3}.5,{k % 2}\n" for k in range(25))
    path.write_text("name,energy,label\n" + rows)
    with pytest.raises(UserError) as error:
        io.read_table(str(path))
    message = str(error.value)
    assert "column 'name' has a different value in every row (an identifier?)" in message
    assert message.endswith("leave it out with columns=['energy', 'label']") and "\n" not in message
    assert io.read_table(str(path), columns=["energy", "label"]).values.shape == (25, 2)
    # An empty column beside it (World Bank exports end in years not yet filled in): one message
    # whose column list leaves both out, instead of one refusal after another.
    path.write_text("name,energy,2013,label,2014\n" + rows.replace(".5,", ".5,,").replace("\n", ",\n"))
    with pytest.raises(UserError) as error:
        io.read_table(str(path))
    message = str(error.value)
    assert message.endswith("leave it out with columns=['energy', 'label'] (it leaves out too: "
                            "'2013' (no values), '2014' (no values))")
    path.write_text("energy,2013\n1.5,\n2.5,\n")
    with pytest.raises(UserError, match=r"column '2013' has no values, which cannot be learnt: leave it "
                                        r"out with columns=\['energy'\]$"):
        io.read_table(str(path))
    # Nothing else to learn: columns=[] (--columns '') reads every column again, so it is not offered.
    path.write_text("name,2013\n" + "".join(f"event-{k},\n" for k in range(25)))
    with pytest.raises(UserError, match=r"^column 'name' has a different value in every row \(an "
                                        r"identifier\?\), which cannot be learnt, and the table has no other "
                                        r"column to learn: '2013' \(no values\)$"):
        io.read_table(str(path))


@pytest.mark.parametrize("start", [0, 1])
def test_a_saved_row_index_is_refused_and_a_count_that_is_data_is_kept(tmp_path, start):
    """pandas' ``to_csv()`` writes its index as an unnamed first column: 0, 1, 2, ..."""
    rng = np.random.default_rng(0)
    rows = "".join(f"{start + k},{rng.normal():.3f},{1990 + k}\n" for k in range(30))
    path = tmp_path / "indexed.csv"
    path.write_text(",x,year\n" + rows)
    with pytest.raises(UserError) as error:
        io.read_table(str(path))
    message = str(error.value)
    assert "column 'column 0' numbers the rows (0, 1, 2, ...: a saved index?)" in message
    # year counts from 1990
    assert "columns=['x', 'year'] (or config={'data': {'integer': ['column 0']}} to learn it)" in message
    assert io.read_table(str(path), columns=["x", "year"]).values.shape == (30, 2)
    kept = io.read_table(str(path), kinds={"integer": ["column 0"]})
    assert kept.schema[0].kind == "integer" and kept.values[-1, 0] == start + 29
    shuffled = "".join(f"{k},{k}\n" for k in rng.permutation(30))
    path.write_text("n,m\n" + shuffled)  # whole numbers, but not counting the rows
    assert [c.kind for c in io.read_table(str(path)).schema] == ["integer", "integer"]


def test_a_group_id_of_long_format_rows_is_refused_and_a_sorted_count_that_is_data_is_kept(tmp_path):
    """statsmodels' modechoice: four rows per traveller, numbered 1, 1, 1, 1, 2, ... A model of
    one row at a time would pair travellers' rows at random."""
    rng = np.random.default_rng(0)
    rows = "".join(f"{person},{mode},{rng.normal():.3f}\n" for person in range(1, 31) for mode in range(1, 5))
    path = tmp_path / "long.csv"
    path.write_text("individual,mode,cost\n" + rows)
    with pytest.raises(UserError) as error:
        io.read_table(str(path))
    message = str(error.value)
    assert ("column 'individual' numbers groups of rows (1, 1, 2, 2, 2, ...: the ID of a person or group?)"
            in message)
    assert "columns=['mode', 'cost'] (or config={'data': {'integer': ['individual']}} to learn it)" in message
    assert io.read_table(str(path), columns=["mode", "cost"]).values.shape == (120, 2)
    assert io.read_table(str(path), kinds={"integer": ["individual"]}).schema[0].kind == "integer"
    few = "".join(f"{label},{rng.normal():.3f}\n" for label in np.repeat(np.arange(19), 3))
    path.write_text("label,x\n" + few)  # a sorted label of 19 values: too few runs for an ID
    assert [c.kind for c in io.read_table(str(path)).schema] == ["integer", "numeric"]
    path.write_text("year,x\n" + "".join(f"{1990 + k // 2},{rng.normal():.3f}\n" for k in range(60)))
    assert io.read_table(str(path)).schema[0].kind == "integer"  # a sorted year: not from 0 or 1
    # statsmodels' anes96 is sorted by income (1 to 24, 10 to 103 rows each): data, with a warning.
    levels = np.repeat(np.arange(1, 25), rng.integers(10, 104, 24))
    path.write_text("income,x\n" + "".join(f"{level},{rng.normal():.3f}\n" for level in levels))
    with pytest.warns(UserWarning, match=r"column 'income' counts up in runs of rows of unequal length .* "
                                         r"leave it out with columns=\['x'\]$"):
        assert io.read_table(str(path)).schema[0].kind == "integer"


def test_numbers_declared_categorical_nearly_one_per_row_are_learnt_with_a_warning(tmp_path):
    """`--categorical mass` on measurements learnt a label per value without a word."""
    rng = np.random.default_rng(0)
    path = tmp_path / "masses.csv"
    path.write_text("mass,code\n" + "".join(f"{rng.normal(50, 5):.2f},{k % 4}\n" for k in range(300)))
    with pytest.warns(UserWarning, match=r"^column 'mass' is declared categorical but has 273 different "
                                         r"numbers in 300 rows: each is a label of its own"):
        assert io.read_table(str(path), kinds={"categorical": ["mass"]}).schema[0].kind == "categorical"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a code of four values, or text labels: said nothing
        io.read_table(str(path), kinds={"categorical": ["code"]})
        path.write_text("name,x\n" + "".join(f"n{k},{rng.normal():.3f}\n" for k in range(30)))
        io.read_table(str(path), kinds={"categorical": ["name"]})


def test_a_table_of_empty_cells_is_refused_without_an_option_that_leaves_nothing(tmp_path):
    """It said "leave it out with --columns ''", which leaves no column."""
    path = tmp_path / "empty.csv"
    path.write_text("a,b\n,\n-,.\n")
    with pytest.raises(UserError, match=r"^.*empty.csv: every cell of its 2 rows is empty: there is nothing "
                                        r"to learn$"):
        io.read_table(str(path))


def test_missing_cells_are_nan_and_drop_missing_says_how_many(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("a,b,c\n1,2,x\n3,,y\n4,5,\nNA,6,x\n7,8,y\n")
    table = io.read_table(str(path))
    assert np.isnan(table.values).sum(0).tolist() == [1, 1, 1]
    path.write_text("a,b,c\n1,?,x\n#N/A,2,?\n3,4,y\n")  # the UCI repository's "?", Excel's #N/A
    assert np.isnan(io.read_table(str(path)).values).sum(0).tolist() == [1, 1, 1]
    path.write_text("a,b,c\n1,.,x\n-,2,-\n3,--,y\n")  # SAS's and Stata's point, a spreadsheet's dash
    table = io.read_table(str(path))
    assert np.isnan(table.values[:, :2]).sum(0).tolist() == [1, 2]
    assert table.schema[2].categories == ["-", "x", "y"]  # among labels a dash is a label
    path.write_text("a,b,c\n1,2,x\n3,,y\n4,5,\nNA,6,x\n7,8,y\n")
    table = io.read_table(str(path))
    assert table.schema[2].nullable and table.schema[2].categories == ["x", "y"]
    dropped = io.read_table(str(path), drop_missing=True)
    assert dropped.dropped == 3 and dropped.values.tolist() == [[1, 2, 0], [7, 8, 1]]


def test_atomic_files_get_the_umask_permissions_without_reading_the_umask(tmp_path):
    """The old code set the umask to 0 for a moment at import (racy with threads); now the
    operating system applies it. A subprocess with umask 027 must write files 0640."""
    script = (
        "import os, sys; os.umask(0o027); os.umask = None\n"
        "from simple_diffusion.data import io\n"
        "io.write_text(sys.argv[1], 'x')\n"
        "print(oct(os.stat(sys.argv[1]).st_mode & 0o777))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "f.txt")], text=True,
                         capture_output=True, check=True).stdout.strip()
    assert out == "0o640"


def test_many_columns_warn(tmp_path):
    path = str(tmp_path / "wide.npy")
    np.save(path, np.random.default_rng(0).normal(size=(10, 70)))
    with pytest.warns(UserWarning, match="70 columns"):
        io.read_table(path)


def test_atomic_write_leaves_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "out.txt"
    io.write_text(path, "old")
    with pytest.raises(RuntimeError), io.atomic_path(path) as temporary:
        temporary.write_text("half")
        raise RuntimeError("crash")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_chunked_npy_write(tmp_path):
    path = str(tmp_path / "big.npy")
    chunks = (np.full((1000, 2), k, dtype=float) for k in range(5))
    io.write_chunks(path, chunks, 5000)
    array = np.load(path)
    assert array.shape == (5000, 2) and array[4999, 0] == 4


def _mixed_parquet(path, rows_per_group=40, groups=3):
    """A table of every kind with gaps in one row group only, written in ``groups`` row groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    n = rows_per_group * groups
    gap_in_first = np.arange(n) < rows_per_group  # gaps only in the first row group
    ints = rng.integers(0, 9, n).astype(object)
    ints[[n - 1, n - 5]] = None  # in the last group: integers in the others
    flags = rng.random(n) < 0.5
    nullable_flags = flags.astype(object)
    nullable_flags[5] = None
    table = pa.table({
        "x": pa.array(np.where(gap_in_first & (rng.random(n) < 0.1), np.nan, rng.normal(size=n))),
        "count": pa.array(rng.integers(0, 100, n)),
        "count_with_gaps": pa.array(list(ints), type=pa.int64()),
        "species": pa.array([["Adelie", "Gentoo", "Chinstrap"][i % 3] if i != 7 else None for i in range(n)]),
        "flag": pa.array(flags),
        "flag_with_gaps": pa.array(list(nullable_flags), type=pa.bool_()),
        "answer": pa.array(["true" if f else "false" for f in flags]),
        "code": pa.array([str(1 + i % 2) for i in range(n)]),
        # Whole days in the first row group, hours after it: the table counts hours.
        "when": pa.array(pd.Timestamp("2024-01-01", tz="UTC")
                         + pd.to_timedelta(np.where(gap_in_first, 24, 1) * rng.integers(0, 99, n), "h")),
    })
    pq.write_table(table, path, row_group_size=rows_per_group)


@pytest.mark.parametrize("kinds", [None, {"categorical": ["count"], "numeric": ["count_with_gaps"]}])
@pytest.mark.filterwarnings("ignore:column 'count' is declared categorical")  # as declared, to test it
def test_a_large_parquet_table_read_in_row_groups_is_the_table_read_whole(tmp_path, monkeypatch, kinds):
    """Gaps in one row group only turn an integer column into floats there (pandas), booleans
    into objects: the kinds, labels and values merged over the groups are the whole table's."""
    path = tmp_path / "mixed.parquet"
    _mixed_parquet(path)
    whole = io.read_table(str(path), kinds=kinds)  # small: read whole
    assert io._read_parquet_in_row_groups([str(path)], str(path), None, kinds, False) is None
    monkeypatch.setattr(io, "READ_WHOLE_BYTES", 0)
    grouped = io._read_parquet_in_row_groups([str(path)], str(path), None, kinds, False)
    assert grouped is not None and grouped.schema == whole.schema
    assert grouped.columns == whole.columns
    np.testing.assert_array_equal(grouped.values, whole.values)  # NaN where missing, in both
    kinds_found = {c.name: (c.kind, c.dtype, c.categories) for c in grouped.schema}
    assert kinds_found["answer"] == ("categorical", "bool", [False, True])
    assert kinds_found["code"] == ("categorical", "int64", [1, 2])
    assert grouped.schema[-1].time_unit == "h" and grouped.schema[-1].dtype == "datetime64[ns, UTC]"
    selected = io.read_table(str(path), columns=["species", "x"])
    assert selected.columns == ["species", "x"]
    np.testing.assert_array_equal(selected.values, whole.values[:, [3, 0]])


@pytest.mark.parametrize("whole_bytes", [None, 0])
def test_a_folder_of_parquet_parts_is_one_table_read_whole_or_a_row_group_at_a_time(
        tmp_path, monkeypatch, whole_bytes):
    """What `sample -o parts/` (or Spark, or Dask) writes: a folder of part-*.parquet beside a
    _SUCCESS file. It was refused as "not a data file" by train, evaluate --samples-file and
    --against."""
    import pyarrow.parquet as pq

    _mixed_parquet(tmp_path / "mixed.parquet", groups=4)
    whole = io.read_table(str(tmp_path / "mixed.parquet"))
    folder = tmp_path / "parts"
    folder.mkdir()
    rows = pq.read_table(tmp_path / "mixed.parquet")
    for k, start in enumerate((0, 70)):  # parts of unequal sizes, cut inside a row group
        pq.write_table(rows.slice(start, 70 if k == 0 else None), folder / f"part-{k:05d}.parquet",
                       row_group_size=40)
    (folder / "_SUCCESS").write_text("")
    if whole_bytes is not None:
        monkeypatch.setattr(io, "READ_WHOLE_BYTES", whole_bytes)
    table = io.read_table(f"{folder}/")
    assert table.schema == whole.schema and table.columns == whole.columns
    np.testing.assert_array_equal(table.values, whole.values)
    assert len(io.read_frame(str(folder))) == 160
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"empty is a folder without Parquet parts \(\*\.parquet\)"):
        io.read_table(str(tmp_path / "empty"))


@pytest.mark.parametrize("levels", [15, 16])
def test_a_text_column_of_mostly_different_values_is_refused_unless_declared_categorical(tmp_path, levels):
    """A label seen in one row or two cannot be learnt: 299 prices as text in 300 rows were 299
    categories, which the model could only copy. More labels than half the rows: refused."""
    path = tmp_path / "t.csv"
    path.write_text("name,x\n" + "".join(f"n{k % levels},{k}.5\n" for k in range(30)))
    if levels == 15:
        assert len(io.read_table(str(path)).schema[0].categories) == 15
        return
    with pytest.raises(UserError) as error:
        io.read_table(str(path))
    assert str(error.value) == ("column 'name' has 16 different values in 30 rows (an identifier, or "
                                "free text?), which cannot be learnt: leave it out with columns=['x'] "
                                "(or config={'data': {'categorical': ['name']}} to learn it as labels)")
    table = io.read_table(str(path), kinds={"categorical": ["name"]})
    assert len(table.schema[0].categories) == 16


def test_a_frames_text_column_of_numbers_is_refused_with_the_conversion_that_reads_it():
    """An object column of numbers and a marker pandas kept ("n/a") was called free text."""
    values = [f"{k / 7:.3f}" for k in range(40)]
    values[3] = "n/a?"
    with pytest.raises(UserError, match=r"column 'x' holds numbers as text \(40 different values in 40 "
                                        r"rows\), which cannot be learnt as labels: convert it to numbers"):
        io.from_frame(pd.DataFrame({"x": values, "k": ["a", "b"] * 20}))


def test_labels_written_with_leading_zeros_keep_them(tmp_path):
    """Codes such as "007" were read as the integer 7 when every label was a whole number."""
    path = tmp_path / "t.csv"
    path.write_text("code,x\n007,1.5\n010,2.5\n007,3.5\n")
    table = io.read_table(str(path), kinds={"categorical": ["code"]})
    assert table.schema[0].categories == ["007", "010"]
    assert to_frame(table.values, table.schema)["code"].tolist() == ["007", "010", "007"]


def test_identifiers_are_judged_on_the_whole_column_not_a_row_group(tmp_path, monkeypatch):
    """A column different in every row is refused; one different in every row of each group
    but repeating across groups (20 labels over 60 rows) is a category, as read whole."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setattr(io, "READ_WHOLE_BYTES", 0)
    path = tmp_path / "ids.parquet"
    labels = [f"row{i}" for i in range(60)]
    pq.write_table(pa.table({"id": labels, "x": np.arange(60.0)}), path, row_group_size=20)
    with pytest.raises(UserError, match="'id' has a different value in every row"):
        io.read_table(str(path))
    pq.write_table(pa.table({"id": [labels[i % 20] for i in range(60)], "x": np.arange(60.0)}), path,
                   row_group_size=20)
    table = io._read_parquet_in_row_groups([str(path)], str(path), None, None, False)
    assert table is not None and table.schema[0].kind == "categorical"
    assert len(table.schema[0].categories) == 20


def test_a_csv_column_of_numbers_is_parsed_once(tmp_path, monkeypatch):
    """Parsing is most of reading a large CSV; detecting the kinds and then reading the values
    parsed every numeric column twice (a 1,000,000 x 20 CSV: 17.3 s, now 13.8 s)."""
    from simple_diffusion.data import columns

    path = tmp_path / "t.csv"
    path.write_text("a,b,name\n1.5,2,x\n2.5,3,y\n3.5,,x\n")
    calls = []
    parse = columns._numbers_of_text
    monkeypatch.setattr(columns, "_numbers_of_text", lambda column, *a, **k: calls.append(column.name)
                        or parse(column, *a, **k))
    table = io.read_table(str(path))
    assert sorted(calls) == ["a", "b", "name"]  # the text column is tried once too
    np.testing.assert_array_equal(table.values[:, :2], [[1.5, 2], [2.5, 3], [3.5, np.nan]])


def test_a_table_that_repeats_a_column_name_is_refused_by_name(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,b\n1,2,3\n4,5,6\n")
    with pytest.raises(UserError, match=r"t\.csv: the column name 'b' appears twice"):
        io.read_table(str(tmp_path / "t.csv"))
    frame = pd.DataFrame(np.ones((5, 3)), columns=["a", "b", "a"])
    with pytest.raises(UserError, match="DataFrame: the column name 'a' appears twice"):
        io.from_frame(frame)
    with pytest.raises(UserError, match="the column name '1' appears twice"):  # 1 and "1" both read "1"
        io.from_frame(pd.DataFrame(np.ones((5, 2)), columns=[1, "1"]))


def test_a_frame_with_two_levels_of_column_names_is_refused_with_the_line_that_flattens_them():
    """A pivot's or ``agg``'s columns, ("mass", "mean"), were looked up as one name: "no column
    \"('mass', 'mean')\""."""
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(20, 2)),
                         columns=pd.MultiIndex.from_tuples([("mass", "mean"), ("mass", "max")]))
    refused = (r"DataFrame: its columns have 2 levels of names \(such as \('mass', 'mean'\)\): give each "
               r"column one name first, e\.g\. df\.columns = .*$")
    with pytest.raises(UserError, match=refused) as refusal:
        io.from_frame(frame)
    df = frame.copy()
    exec(refusal.value.args[0].split("e.g. ")[1], {}, {"df": df})  # the line, as printed
    assert io.from_frame(df).columns == ["mass_mean", "mass_max"]


def test_a_spreadsheets_totals_row_is_named_and_a_flag_set_once_is_no_total(tmp_path):
    """A sheet exported with its "Total" row gave a row 60 times the others, learnt as data
    without a word."""
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"amount": rng.normal(10, 2, 60).round(2), "count": rng.integers(1, 9, 60),
                         "shop": rng.choice(["a", "b"], 60)})
    total = pd.DataFrame({"amount": [round(rows["amount"].sum(), 1)], "count": [rows["count"].sum()],
                          "shop": ["Total"]})
    path = tmp_path / "sales.csv"
    pd.concat([rows, total]).to_csv(path, index=False)
    totals = (r"sales\.csv: line 62 holds the sum of the rows above it in 'amount', 'count' \(a totals "
              r"row\?\), which is learnt as data: leave it out")
    with pytest.warns(UserWarning, match=totals):
        io.read_table(str(path))
    flags = pd.DataFrame({"x": rng.normal(size=60), "flag": np.r_[np.zeros(30), 1, np.zeros(28), 1]})
    sums = pd.DataFrame({"x": rng.normal(size=60), "y": np.r_[rng.normal(size=59), 0.0]})
    sums.loc[59, "x"] = sums["x"][:59].sum()  # one column sums, the other does not
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        io.from_frame(flags[["flag"]])
        io.from_frame(rows)
        io.from_frame(sums)


def test_a_units_row_under_the_header_is_read_as_units_and_a_typo_stays_an_error(tmp_path):
    """An instrument's export writes units under the names (``kg,cm``): "column 'mass' has a
    non-numeric value 'kg' at line 2 ... learn the column as labels with --categorical mass"."""
    path = tmp_path / "people.csv"
    path.write_text("mass,height,sex\nkg,[cm],\n70.5,180.2,m\n61.0,165.0,f\n80.25,,m\n")
    units = r"people\.csv: the row under the header \(mass: kg, height: \[cm\]\) is read as the columns'"
    with pytest.warns(UserWarning, match=units + " units, not as data"):
        table = io.read_table(str(path))
    np.testing.assert_array_equal(table.values[:, :2], [[70.5, 180.2], [61.0, 165.0], [80.25, np.nan]])
    assert [c.unit for c in table.schema] == ["kg", "[cm]", ""]
    assert [c.axis_label for c in table.schema] == ["mass (kg)", "height (cm)", "sex"]  # the plots' axes
    assert describe(table.schema) == "mass numeric in kg, height numeric in cm, sex categorical (2)"
    out = tmp_path / "out.csv"  # samples are written as the data was: units under the header
    io.write_table(str(out), to_frame(table.values, table.schema), schema=table.schema)
    assert out.read_text().splitlines()[:3] == ["mass,height,sex", "kg,[cm],", "70.5,180.2,m"]
    path.write_text("mass,height,sex\nkg,cm,\n70.5,180.2,m\n61.0,x,f\n")
    with pytest.warns(UserWarning, match="units"), \
            pytest.raises(UserError, match="column 'height' has a non-numeric value 'x' at line 4"):
        io.read_table(str(path))  # lines still counted from the file's first
    rows = "70.5,180.2,m\n61.0,165.0,f\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path.write_text(f"mass,height,sex\nkg,180.2,m\n{rows}")  # a word beside a number: a typo
        with pytest.raises(UserError, match="column 'mass' has a non-numeric value 'kg' at line 2"):
            io.read_table(str(path))
        path.write_text(f"mass,height,sex\nNA,-,m\n{rows}")  # a row of gaps
        assert np.isnan(io.read_table(str(path)).values[0, :2]).all()
