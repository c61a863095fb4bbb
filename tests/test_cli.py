"""The command line end to end, in a temporary folder, and every bad input it must refuse."""

import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from simple_diffusion.cli import Count, main


def invoke(capsys, *args):
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    main(["train", str(out), "--data", "two_gaussians", "--epochs", "2", "-n", "3000",
          "--likelihood-rows", "0", "--quiet"])
    return out


def test_train_writes_the_run_folder(trained):
    names = {p.name for p in trained.iterdir()}
    assert {"config.toml", "model.safetensors", "losses.csv", "loss.png", "samples.png",
            "metrics.json"} <= names


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".parquet"])
def test_sample_writes_the_requested_format(trained, tmp_path, capsys, suffix):
    path = tmp_path / f"s{suffix}"
    code, _, err = invoke(capsys, "sample", trained, "-n", 500, "-o", path, "--seed", 1, "--quiet")
    assert code == 0, err
    from simple_diffusion.data import io

    table = io.read_table(str(path))
    assert table.values.shape == (500, 1)
    assert np.abs(table.values).max() < 20  # original units: the modes sit at -4 and +4


@pytest.mark.parametrize("name", ["s.csv", "s.parquet", "s.xlsx", "s.npy", "parts/"])
def test_sample_of_no_rows_writes_a_table_of_no_rows(trained, tmp_path, capsys, name):
    """-n 0 wrote a file of no bytes: no CSV header, and a Parquet file nothing can read."""
    code, _, err = invoke(capsys, "sample", trained, "-n", 0, "-o", f"{tmp_path}/{name}", "--quiet")
    assert code == 0, err
    if name.endswith(".npy"):
        assert np.load(tmp_path / name).shape == (0, 1)
    else:
        read = {"s.csv": pd.read_csv, "s.xlsx": pd.read_excel}.get(name, pd.read_parquet)
        assert read(tmp_path / name).shape == (0, 1)


@pytest.mark.parametrize("name", ["-", "/dev/stdout"])
def test_sample_to_standard_output_is_the_csv_file(trained, tmp_path, capsys, name):
    """``/dev/stdout`` is standard output too, written as a stream: through a temporary file
    renamed over it, the rename would fail, or replace the device for a user running as root."""
    import pandas as pd

    code, out, err = invoke(capsys, "sample", trained, "-n", 300, "-o", name, "--seed", 3, "--quiet")
    assert code == 0 and "to standard output" in err and "wrote" not in out
    invoke(capsys, "sample", trained, "-n", 300, "-o", tmp_path / "s.csv", "--seed", 3, "--quiet")
    from io import StringIO

    pd.testing.assert_frame_equal(pd.read_csv(StringIO(out)), pd.read_csv(tmp_path / "s.csv"))


@pytest.mark.parametrize(("args", "message"), [
    (["sample", "{run}", "-n", "10", "-o", "-", "--nproc", "2"], "standard output) takes one process"),
    (["score", "{run}", "--data", "{run}/split.safetensors", "-o", "-"], "score writes a histogram"),
    (["score", "{run}", "--data", "{run}/split.safetensors", "-o", "/dev/stdout"],
     "standard output will not do"),
])
def test_standard_output_refused_where_it_cannot_work(trained, capsys, args, message):
    code, out, err = invoke(capsys, *[a.format(run=trained) for a in args])
    assert code == 1 and message in err and out == ""


def test_sample_with_other_samplers(trained, tmp_path, capsys):
    for sampler, steps in [("heun", 10), ("ddim", 30), ("ancestral", 0)]:
        code, _, err = invoke(capsys, "sample", trained, "-n", 200, "-o", tmp_path / "s.npy",
                              "--sampler", sampler, "--num-steps", steps, "--quiet")
        assert code == 0, err
        assert np.load(tmp_path / "s.npy").shape == (200, 1)


def test_evaluate_prints_distance_floor_and_ratio(trained, capsys):
    code, out, err = invoke(capsys, "evaluate", trained, "-n", 3000, "--likelihood-rows", 0)
    assert code == 0, err
    assert "floor" in out and "ratio" in out and "mass per mode" in out
    code, out, _ = invoke(capsys, "evaluate", trained, "-n", 3000, "--json", "--likelihood-rows", 0)
    assert {"distance", "floor", "ratio"} <= set(json.loads(out))


def test_evaluate_shows_its_sampling_unless_quiet(trained, capsys):
    """Drawing the evaluation's samples takes a minute on a large table: it showed nothing."""
    _, _, err = invoke(capsys, "evaluate", trained, "-n", 3000, "--likelihood-rows", 0)
    assert "sampling" in err
    code, _, err = invoke(capsys, "evaluate", trained, "-n", 3000, "--likelihood-rows", 0, "--quiet")
    assert code == 0 and "sampling" not in err


def test_evaluate_given_samples(trained, tmp_path, capsys):
    samples = tmp_path / "s.npy"
    np.save(samples, np.random.default_rng(0).normal(4, 1, size=(2000, 1)))
    code, out, _ = invoke(capsys, "evaluate", trained, "--samples", samples, "--json",
                          "--likelihood-rows", 0)
    assert code == 0
    assert json.loads(out)["mode_masses"]["model"][1] > 0.99


@pytest.mark.parametrize(("args", "message"), [
    (["-n", 0], "-n 0 draws no samples, and evaluate needs some (in train, -n 0 skips the evaluation)"),
    (["--samples-file", "{rows}", "-n", 100], "-n: the rows of --samples-file are evaluated as they are"),
    (["--samples-file", "{no rows}"], "no samples to evaluate: the samples given have no rows"),
])
def test_evaluate_refuses_to_judge_no_samples(trained, tmp_path, capsys, args, message):
    """`evaluate -n 0` and a samples file of no rows ended in a ZeroDivisionError; -n beside a
    samples file was ignored without a word."""
    files = {"{rows}": tmp_path / "s.csv", "{no rows}": tmp_path / "none.csv"}
    pd.DataFrame({"x1": [0.5, 4.0]}).to_csv(files["{rows}"], index=False)
    pd.DataFrame({"x1": []}).to_csv(files["{no rows}"], index=False)
    code, _, err = invoke(capsys, "evaluate", trained, *[files.get(a, a) for a in args], "--quiet")
    assert code == 1 and err.startswith(f"error: {message}") and "Traceback" not in err


def test_a_samples_file_in_other_columns_is_named_by_its_path(trained, tmp_path, capsys):
    """The message began "samples:", not with the file the user gave."""
    other = tmp_path / "other.csv"
    pd.DataFrame({"a": [0.5, 4.0], "b": [1.0, 2.0]}).to_csv(other, index=False)
    code, _, err = invoke(capsys, "evaluate", trained, "--samples-file", other, "--quiet")
    assert code == 1 and err.strip() == (f"error: {other}: the model's columns are x; its columns are a, b "
                                         "(no 'x')")


def test_datasets_lists_targets(capsys):
    code, out, _ = invoke(capsys, "datasets")
    assert code == 0 and "two_gaussians" in out and "three_gaussians" in out


def test_help_teaches(capsys):
    code, out, _ = invoke(capsys, "train", "--help")
    assert code == 0 and "Examples" in out and "[default: default]" in " ".join(out.split())


def write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    else:
        np.save(path, content)
    return path


BAD = [
    (["--data", "missing.csv"], "data file not found"),
    (["--data", "{words.csv}"], "non-numeric value 'hello'"),
    (["--data", "{empty.csv}"], "empty"),
    (["--data", "{inf.npy}"], "an infinite value at row 1 in column '0'"),
    (["--data", "{inf.csv}"], "an infinite value at line 4 in column 'x'"),
    (["--data", "gaussian_blob"], "neither a built-in target"),
    (["--data", "two_gaussians", "--preset", "fancy"], "Invalid value for '--preset'"),
    (["--data", "two_gaussians", "--steps", "0"], "Invalid value for '--steps'"),
    (["--data", "two_gaussians", "--epochs", "-5"], "train.epochs must be 0 (use steps) or positive"),
    (["--data", "two_gaussians", "--config", "{lr.toml}"], "train.lr must be a positive"),
    (["--data", "two_gaussians", "--config", "{broken.toml}"], "not valid TOML"),
    (["--data", "two_gaussians", "--config", "missing.toml"], "config file not found"),
    (["--data", "{constant.csv}"], "column 'b' is constant"),
    (["--resume", "--categorical", "year"], "the run's own settings (config.toml); --categorical sets a new"),
    (["--resume", "--inpainting", "learnt"], "--inpainting sets a new run's"),
    (["--resume", "--extrapolate"], "--extrapolate sets a new run's"),
    (["--resume", "--steps", "5"], "--steps sets a new run's budget"),
    (["--resume", "--seed", "3"], "config.toml); --seed sets a new run's"),
    (["--resume", "--preset", "seed"], "config.toml); --preset sets a new run's"),
    (["--data", "two_gaussians", "--inpainting", "learnt", "--condition", "x1"],
     "inpainting = learnt conditions on any columns: leave data.condition (--condition) empty"),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_input_one_line_no_traceback_nothing_written(tmp_path, capsys, args, message):
    files = {
        "words.csv": "a,b\n1,2\n3,hello\n",
        "empty.csv": "",
        "inf.npy": np.array([[1.0], [np.inf], [2.0]]),
        "inf.csv": "x\n1\n2\ninf\n",
        "lr.toml": "[train]\nlr = -0.001\n",
        "broken.toml": "[train\nlr = 1\n",
        "constant.csv": "a,b\n1,5\n2,5\n3,5\n",
    }
    paths = {f"{{{name}}}": str(write(tmp_path, name, content)) for name, content in files.items()}
    args = [paths.get(a, str(tmp_path / a) if a.endswith((".csv", ".toml")) else a) for a in args]
    out = tmp_path / "run"
    code, _, err = invoke(capsys, "train", out, *args, "--quiet")
    assert code != 0
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 3
    assert not out.exists() or not any(out.iterdir())


def test_a_folder_holding_a_run_is_refused_before_the_data_are_read(trained, tmp_path, capsys):
    """The refusal used to come after the table's column report (and after reading it: 14 s
    for a 1,000,000-row CSV); it is now the only line."""
    table = write(tmp_path, "table.csv", "x,kind\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(40)))
    before = sorted(p.name for p in trained.iterdir())
    code, _, err = invoke(capsys, "train", trained, "--data", table)
    assert code == 1
    assert err.strip().splitlines() == [
        f"error: {trained} holds a run; pass --overwrite to replace it, or continue its training with "
        f"`simple-diffusion train --resume {trained}`"]
    assert sorted(p.name for p in trained.iterdir()) == before


def test_sample_from_a_missing_run(tmp_path, capsys):
    code, _, err = invoke(capsys, "sample", tmp_path / "none", "-n", 10, "-o", tmp_path / "x.npy")
    assert code == 1 and err.startswith("error: run folder not found")


def test_sample_to_an_unknown_format(trained, tmp_path, capsys):
    code, _, err = invoke(capsys, "sample", trained, "-n", 10, "-o", tmp_path / "x.yaml", "--quiet")
    assert code == 1 and "unsupported file type .yaml; use .npy, .csv, .tsv, .txt, .dat, .parquet" in err


def test_installed_command_exits_non_zero_without_traceback(tmp_path):
    """The real entry point, as a user's shell runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "simple_diffusion", "train", str(tmp_path / "r"), "--data",
         "nope.csv"],
        capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "error: data file not found: nope.csv"


def test_animate_writes_a_gif(trained, tmp_path, capsys):
    path = tmp_path / "reverse.gif"
    code, _, err = invoke(capsys, "animate", trained, "-o", path, "-n", 100, "--num-steps", 3)
    assert code == 0, err
    assert path.read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    assert "frames: 100%" in err  # 12 frames (4 steps, and 8 to linger on the samples) take seconds
    code, _, err = invoke(capsys, "animate", trained, "-o", path, "-n", 50, "--num-steps", 2, "--quiet")
    assert code == 0 and err.strip() == f"wrote {path} (3 frames)"
    code, _, err = invoke(capsys, "animate", trained, "-o", tmp_path / "x.mp4")
    assert code == 1 and "gif" in err


def test_animate_labels_its_axes_with_the_columns_units(tmp_path, capsys, monkeypatch):
    from simple_diffusion.evaluation import plots

    path = tmp_path / "people.csv"
    rng = np.random.default_rng(0)
    path.write_text("mass,height\nkg,[cm]\n" + "".join(f"{m:.1f},{h:.1f}\n" for m, h in
                                                        zip(rng.normal(70, 9, 200), rng.normal(170, 8, 200))))
    code, _, err = invoke(capsys, "train", tmp_path / "run", "--data", path, "--steps", 20,
                          "--eval-samples", 0)
    assert code == 0, err
    drawn = {}
    monkeypatch.setattr(plots, "animate_reverse_process", lambda frames, levels, columns, *a, **k:
                        drawn.setdefault("columns", columns) and open(a[0], "wb").close())
    code, _, err = invoke(capsys, "animate", tmp_path / "run", "-o", tmp_path / "a.gif", "-n", 20, "--quiet")
    assert code == 0, err
    assert drawn["columns"] == ["mass (kg)", "height (cm)"]


def test_user_table_with_data_options(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "table.csv"
    rows = np.column_stack([rng.lognormal(size=400), rng.beta(2, 3, 400), rng.poisson(3, 400), np.ones(400)])
    np.savetxt(path, rows, delimiter=",", header="size,share,count,unit", comments="")
    out = tmp_path / "run"
    code, _, err = invoke(capsys, "train", out, "--data", path, "--epochs", 2, "--quiet",
                          "--preprocess", "quantile", "--bounds", "size=0:,share=0:1", "--integer", "count",
                          "--keep-constant", "-n", 500, "--columns", "size,share,count,unit")
    assert code == 0, err
    assert (out / "report.html").exists()
    code, _, err = invoke(capsys, "sample", out, "-n", 300, "-o", tmp_path / "s.csv", "--quiet")
    assert code == 0, err
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "size,share,count,unit"
    values = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)
    assert (values[:, 0] >= 0).all() and ((values[:, 1] >= 0) & (values[:, 1] <= 1)).all()
    assert (values[:, 2] == np.round(values[:, 2])).all() and (values[:, 3] == 1).all()


@pytest.mark.parametrize("rows", [3, 20])
def test_a_table_of_a_few_rows_trains_and_says_which_tests_it_could_not_run(tmp_path, capsys, rows):
    """statsmodels' china_smoking (8 rows: one held out, as of 3) and stackloss (21) ended in a
    traceback: scikit-learn cannot split 2 held-out rows into the C2ST's five folds, and one row
    has no energy distance. Two rows leave one to train on, which was refused as "column 'a' is
    constant"."""
    path = tmp_path / "table.csv"
    np.savetxt(path, np.random.default_rng(0).normal(size=(rows, 3)), delimiter=",", header="a,b,c",
               comments="")
    code, out, err = invoke(capsys, "train", tmp_path / "run", "--data", path, "--steps", 50, "--quiet")
    assert code == 0 and "warning" not in err, err
    held_out = 1 if rows == 3 else 2
    assert (f"energy distance and C2ST: not computed ({held_out} reference row{'s' * (held_out > 1)} "
            "to compare with; they need 10)") in out
    assert "not computed" in (tmp_path / "run" / "report.html").read_text()
    if rows == 3:
        path.write_text("a,b,c\n1,2,3\n4,5,7\n")
        code, _, err = invoke(capsys, "train", tmp_path / "two", "--data", path, "--steps", 50, "--quiet")
        assert code == 1 and err == (f"error: {path}: 2 rows are too few to learn from: 1 held out for "
                                     "validation would leave 1 training row (at least 3 rows are needed)\n")


def test_headerless_csv_declared(tmp_path, capsys):
    path = tmp_path / "plain.csv"
    np.savetxt(path, np.random.default_rng(1).normal(size=(300, 2)), delimiter=",")
    code, _, err = invoke(capsys, "train", tmp_path / "r", "--data", path, "--epochs", 1,
                          "--no-header", "-n", 0, "--quiet")
    assert code == 0, err


def test_version_0_1_spellings_still_work_with_a_note(tmp_path, capsys):
    out = tmp_path / "old"
    code, _, err = invoke(capsys, "train", "--data", "two_gaussians", "--out", out, "--epochs", 1,
                          "--eval-samples", 0, "--quiet")
    assert code == 0, err
    assert "--out is deprecated" in err and "--eval-samples is deprecated" in err
    code, _, err = invoke(capsys, "sample", out, "-n", 50, "-o", tmp_path / "s.npy", "--steps", 5,
                          "--quiet")
    assert code == 0 and "--steps is deprecated" in err and "write --num-steps instead" in err
    assert np.load(tmp_path / "s.npy").shape == (50, 1)
    code, out_text, err = invoke(capsys, "evaluate", out, "--samples", tmp_path / "s.npy",
                                  "--likelihood-rows", 0)
    assert code == 0 and "--samples is deprecated" in err and "ratio" in out_text


def test_help_is_generated_from_the_defaults_it_describes(capsys):
    from simple_diffusion import config

    code, text, _ = invoke(capsys, "train", "--help")
    assert code == 0
    flat = " ".join(text.split())
    default = config.preset("default")
    assert f"sampler {default.sample.sampler} ({default.sample.num_steps} steps)" in flat
    assert "DPM-Solver++(3M)" not in flat and "\\n" not in text
    assert "density (held-out likelihood and anomaly scores" in flat
    assert "Gaussian part 0.9, steps by data size with logsnr noise levels" in flat
    code, text, _ = invoke(capsys, "sample", "--help")
    assert all(name in text for name in config.CHOICES[("sample", "sampler")])


def test_the_version_is_answered_from_a_source_tree_that_is_not_installed(monkeypatch, capsys):
    """As on a machine that runs the checkout through PYTHONPATH: no package metadata."""
    import importlib.metadata

    import simple_diffusion

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    code, text, _ = invoke(capsys, "--version")
    assert code == 0 and text.strip() == f"simple-diffusion, version {simple_diffusion.__version__}"


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["datasets"], ["train", "--help"]])
def test_quick_commands_import_neither_torch_nor_matplotlib(args):
    """They must answer in well under a second; torch alone takes about 2 s to import."""
    script = (
        "import sys\n"
        "from simple_diffusion.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('torch', 'matplotlib', 'pandas', 'ot', 'sklearn') if m in sys.modules)\n"
        "print('heavy:', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "heavy: []"


def test_main_leaves_the_process_settings_alone(trained, tmp_path, capsys):
    import warnings

    before = (warnings.showwarning, warnings.formatwarning, np.geterr(), list(warnings.filters))
    invoke(capsys, "sample", trained, "-n", 20, "-o", tmp_path / "s.npy", "--quiet")
    assert (warnings.showwarning, warnings.formatwarning, np.geterr(), list(warnings.filters)) == before


def test_evaluate_says_what_a_perfect_model_scores_and_checks_for_copies(trained, capsys):
    code, out, _ = invoke(capsys, "evaluate", trained, "-n", 3000, "--likelihood-rows", 0)
    assert code == 0
    assert "exact samples: about 1.77" in out  # 3,000 samples vs 10,000 rows and 100,000 draws
    assert "distance to closest record): 0.5" in out or "distance to closest record): 0.4" in out
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["perfect_ratio"] == pytest.approx(1.77, abs=0.01)
    assert 0.4 < metrics["memorisation"]["share"] < 0.6


def test_sampling_to_npy_loads_torch_but_no_evaluation_or_table_packages(trained, tmp_path):
    arguments = ["sample", str(trained), "-n", "100", "-o", str(tmp_path / "s.npy"), "--quiet"]
    probe = (
        "import sys\n"
        "from simple_diffusion.cli import main\n"
        f"main({arguments!r})\n"
        "print(sorted(m for m in ('ot', 'sklearn', 'matplotlib', 'pandas', 'scipy') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stderr
    assert np.load(tmp_path / "s.npy").shape == (100, 1)


@pytest.mark.parametrize("written, count", [("1e3", 1000), ("2.5e3", 2500), ("1_000", 1000), ("1,000", 1000),
                                            ("300", 300), ("1.5", None), ("1e", None), ("-1e3", None)])
def test_counts_are_read_as_people_write_large_numbers(written, count):
    import click

    if count is None:
        with pytest.raises(click.BadParameter):
            Count(min=0).convert(written, None, None)
    else:
        assert Count(min=0).convert(written, None, None) == count


def test_no_output_replaces_an_input_the_training_data_or_a_file_of_the_run(tmp_path, capsys):
    """A slip of -o (the --data file, the run's own training data, a file the run folder keeps,
    the --given file; score's histogram beside its output) is refused before any work, and the
    file is as it was."""
    rng = np.random.default_rng(0)
    data = tmp_path / "table.csv"
    rows = rng.normal(size=(300, 2))
    rows[::10, 1] = np.nan
    np.savetxt(data, rows, delimiter=",", header="a,b", comments="")
    run = tmp_path / "run"
    assert invoke(capsys, "train", run, "--data", data, "--steps", 50, "-n", 500, "--likelihood-rows", 0,
                  "--quiet")[0] == 0
    given = tmp_path / "given.csv"
    given.write_text("a\n0.5\n")
    before = {path: path.read_bytes() for path in (data, given, run / "losses.csv", run / "samples.png")}
    commands = {
        "the --data file": ["impute", run, "--data", data, "-o", tmp_path / "." / "table.csv"],
        "the run's training data": ["sample", run, "-n", 5, "-o", data],
        "a file of the run folder (losses.csv)": ["sample", run, "-n", 5, "-o", run / "losses.csv"],
        "the --given file": ["sample", run, "-n", 5, "-o", given, "--given", given],
        "a file of the run folder (samples.png)": ["score", run, "--data", given, "-o", run / "samples.csv"],
    }
    for what, command in commands.items():
        code, _, err = invoke(capsys, *command)
        assert code == 1 and f"is {what}, which is kept: write to another file" in err, err
    assert all(path.read_bytes() == content for path, content in before.items())
    import simple_diffusion as sd

    with pytest.raises(sd.UserError, match="the run's training data"):
        sd.write_samples(sd.load(run), str(data), 5)
    assert invoke(capsys, "impute", run, "--data", data, "-o", tmp_path / "filled.csv", "--quiet")[0] == 0


def test_a_spreadsheet_export_with_decimal_commas_and_currency_trains_and_samples_as_it_came(
        tmp_path, capsys):
    """A European export (semicolons, decimal commas) and amounts in dollars were refused or learnt
    as hundreds of labels; `--given height=171,3` split at its comma."""
    rng = np.random.default_rng(0)
    height = 170 + 10 * rng.normal(size=200)
    data = tmp_path / "people.csv"
    data.write_text("height;income\n" + "".join(
        f"{h:.1f};${1000 * (h - 100):,.2f}\n".replace(".", ",", 1) for h in height))
    run = tmp_path / "run"
    code, out, err = invoke(capsys, "train", run, "--data", data, "--steps", 50, "-n", 200,
                            "--likelihood-rows", 0)
    assert code == 0, err
    assert "columns: height numeric (as 12,5), income numeric (as $1,234.50)" in err
    out = tmp_path / "s.csv"
    assert invoke(capsys, "sample", run, "-n", 3, "-o", out, "--given", "height=171,3", "--quiet")[0] == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "height;income" and len(lines) == 4
    assert all(re.fullmatch(r"171,3;-?\$[\d,]+\.\d\d", line) for line in lines[1:]), lines


def test_a_column_name_with_a_comma_is_quoted_in_the_advice_and_taken_back_quoted(tmp_path, capsys):
    """`--columns` printed `'weight, kg,height'`, which split at the name's own comma."""
    rng = np.random.default_rng(0)
    data = tmp_path / "people.csv"
    data.write_text('id,"weight, kg",height\n' + "".join(
        f"p{k},{70 + 5 * rng.normal():.1f},{170 + 8 * rng.normal():.1f}\n" for k in range(100)))
    code, _, err = invoke(capsys, "train", tmp_path / "run", "--data", data, "--steps", 50)
    assert code == 1 and err.strip().endswith("""leave it out with --columns '"weight, kg",height'""")
    advice = shlex.split(err.strip().rsplit("--columns ", 1)[1])
    assert invoke(capsys, "train", tmp_path / "run", "--data", data, "--steps", 50, "-n", 100,
                  "--likelihood-rows", 0, "--quiet", "--columns", *advice)[0] == 0
    out = tmp_path / "s.csv"
    assert invoke(capsys, "sample", tmp_path / "run", "-n", 3, "-o", out, "--given", '"weight, kg"=70',
                  "--quiet")[0] == 0
    assert pd.read_csv(out)["weight, kg"].tolist() == [70, 70, 70]


def test_a_run_trained_on_a_named_sheet_keeps_its_workbook_and_reads_the_sheet_again(tmp_path, capsys):
    """The run records `book.xlsx#Prices`: its workbook is the training data that no output may
    replace (the check looked for a file of that name), and evaluation reads the sheet again."""
    rng = np.random.default_rng(0)
    book = tmp_path / "book.xlsx"
    with pd.ExcelWriter(book) as writer:
        pd.DataFrame({"note": ["see the next sheet"] * 3}).to_excel(writer, index=False, sheet_name="Readme")
        pd.DataFrame({"mass": rng.normal(5, 1, 200), "kind": rng.choice(["p", "q"], 200)}).to_excel(
            writer, index=False, sheet_name="Prices")
    run = tmp_path / "run"
    code, _, err = invoke(capsys, "train", run, "--data", f"{book}#Prices", "--steps", 20, "-n", 0, "--quiet")
    assert code == 0 and "columns: mass numeric, kind categorical (2)" in err
    before = book.read_bytes()
    code, _, err = invoke(capsys, "sample", run, "-n", 3, "-o", book, "--quiet")
    assert code == 1
    assert err.strip() == f"error: {book} is the run's training data, which is kept: write to another file"
    assert book.read_bytes() == before
    conditions = tmp_path / "conditions.xlsx"  # nor the workbook of a --given sheet
    with pd.ExcelWriter(conditions) as writer:
        pd.DataFrame({"kind": ["p"]}).to_excel(writer, index=False, sheet_name="Notes")
        pd.DataFrame({"kind": ["q"]}).to_excel(writer, index=False, sheet_name="Given")
        pd.DataFrame({"kind": ["p"]}).to_excel(writer, index=False, sheet_name="kind=p")  # a file, not a cell
    code, _, err = invoke(capsys, "sample", run, "-n", 3, "-o", conditions, "--given", f"{conditions}#Given")
    assert code == 1 and err.strip().endswith("is the --given file, which is kept: write to another file")
    code, _, _ = invoke(capsys, "sample", run, "-n", 3, "-o", tmp_path / "q.csv", "--given",
                        f"{conditions}#Given")
    assert code == 0 and pd.read_csv(tmp_path / "q.csv")["kind"].eq("q").all()
    code, _, _ = invoke(capsys, "sample", run, "-n", 3, "-o", tmp_path / "p.csv", "--given",
                        f"{conditions}#kind=p")
    assert code == 0 and pd.read_csv(tmp_path / "p.csv")["kind"].eq("p").all()
    code, out, _ = invoke(capsys, "evaluate", run, "-n", 200, "--likelihood-rows", 0, "--quiet")
    assert code == 0 and "C2ST" in out  # the held-out rows, read from the sheet again


def test_a_column_name_on_two_lines_is_advised_on_one_line_that_bash_reads_back(tmp_path, capsys):
    """A header cell wrapped in a spreadsheet ("Weight" above "(kg)") put a line break into the
    one-line error; it is now written in bash's $'...' quoting, which spells it \\n."""
    rng = np.random.default_rng(0)
    data = tmp_path / "wrapped.csv"
    data.write_text('id,"Weight\n(kg)",it\'s\n' + "".join(
        f"p{k},{70 + 5 * rng.normal():.1f},{rng.normal():.1f}\n" for k in range(100)))
    code, _, err = invoke(capsys, "train", tmp_path / "run", "--data", data, "--steps", 50)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert err.strip().endswith("""leave it out with --columns $'"Weight\\n(kg)",it\\'s'""")
    pasted = subprocess.run(["bash", "-c", f"printf '%s' {err.strip().rsplit('--columns ', 1)[1]}"],
                            capture_output=True, text=True, check=True).stdout
    assert invoke(capsys, "train", tmp_path / "run", "--data", data, "--steps", 50, "-n", 0,
                  "--quiet", "--columns", pasted)[0] == 0


def test_evaluating_against_the_training_rows_says_so(tmp_path, capsys):
    """A reference holding the run's training rows (the whole data file, given as --against)
    makes the floor compare them with themselves: evaluate warns. Fresh rows raise nothing, nor
    does a table of a few discrete values, whose held-out rows repeat training rows as often."""
    rng = np.random.default_rng(4)
    few = {"kind": rng.choice(["x", "y"], 600), "count": rng.integers(0, 3, 600)}
    numbers = pd.DataFrame(rng.normal(size=(600, 2)), columns=["a", "b"])
    tables = {"numbers": numbers, "few values": pd.DataFrame(few)}
    for name, table in tables.items():
        data, fresh, run = tmp_path / f"{name}.csv", tmp_path / f"{name} fresh.csv", tmp_path / name
        table[:300].to_csv(data, index=False)
        table[300:].to_csv(fresh, index=False)
        assert invoke(capsys, "train", run, "--data", data, "--steps", 10, "-n", 0, "--quiet")[0] == 0
        for against in (data, fresh) if name == "numbers" else (data,):
            code, _, err = invoke(capsys, "evaluate", run, "--against", against, "-n", 300,
                                  "--likelihood-rows", 0, "--quiet")
            expected = name == "numbers" and against == data
            assert code == 0 and ("are training rows of this run" in err) == expected, err
            if expected:
                assert (f"warning: {data}: 90% of its 300 rows are training rows of this run (of its "
                        "held-out rows, 0%)") in err
