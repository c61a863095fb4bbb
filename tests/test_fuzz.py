"""Property-based: malformed CSV text and arrays end in a clear error or a valid table, never a
traceback or a hang; the CLI likewise."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from simple_diffusion import UserError
from simple_diffusion.cli import main
from simple_diffusion.data import io

CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**6, 10**6).map(str),
    st.sampled_from(["", "nan", "NA", "inf", "-inf", "x", '"1,2"', '"', "1e999", " 3 ", "0x10", "1_000"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6),
)
ROWS = st.lists(st.lists(CELLS, min_size=1, max_size=4), min_size=0, max_size=6)
SEPARATORS = st.sampled_from([",", ";", "\t"])


def csv_text(rows, separator) -> str:
    return "\n".join(separator.join(row) for row in rows)


def check_table(table: io.Table) -> None:
    assert table.values.ndim == 2 and len(table.values) >= 2
    assert not np.isinf(table.values).any()  # NaN marks a missing cell; no column is all missing
    assert not np.isnan(table.values).all(0).any()
    assert len(table.columns) == table.values.shape[1]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=ROWS, separator=SEPARATORS)
@pytest.mark.filterwarnings("ignore:.*above the header")  # a first line of one cell: a title
@pytest.mark.filterwarnings("ignore:.*neither a name nor a value")  # a column of empty cells
def test_csv_loader_never_crashes(tmp_path, rows, separator):
    path = tmp_path / "fuzz.csv"
    path.write_text(csv_text(rows, separator), encoding="utf-8", errors="surrogatepass")
    try:
        table = io.read_table(str(path))
    except UserError as exc:
        assert "\n" not in str(exc).strip() or len(str(exc)) < 500
    else:
        check_table(table)


ARRAYS = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32, np.int64, np.bool_, np.complex64, np.uint8]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
    elements=None,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(array=ARRAYS)
def test_npy_loader_never_crashes(tmp_path, array):
    path = tmp_path / "fuzz.npy"
    np.save(path, array)
    try:
        table = io.read_table(str(path))
    except UserError:
        pass
    else:
        check_table(table)


@settings(max_examples=200, deadline=None)
@given(array=ARRAYS)
def test_in_memory_arrays_never_crash(array):
    try:
        table = io.from_array(array)
    except UserError:
        pass
    else:
        check_table(table)


@pytest.mark.parametrize("seed", range(3))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=ROWS, separator=SEPARATORS)
def test_cli_train_ends_in_a_clear_error_or_a_run(tmp_path_factory, capsys, seed, rows, separator):
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "data.csv"
    path.write_text(csv_text(rows, separator), encoding="utf-8", errors="surrogatepass")
    try:
        main(["train", str(folder / "run"), "--data", str(path), "--epochs", "1",
              "-n", "0", "--quiet", "--seed", str(seed)])
        code = 0
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code:  # one error line, after what the reading warned of (a title skipped, say)
        lines = err.strip().split("\n")  # splitlines() would also split at a cell's \x1e
        assert lines[-1].startswith("error: ") and all(line.startswith("warning: ") for line in lines[:-1])
    else:
        assert (folder / "run" / "model.safetensors").exists()
