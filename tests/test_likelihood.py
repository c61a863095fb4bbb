"""Densities against exact answers: the probability-flow ODE with exact denoisers, the encoders'
Jacobians against finite differences, and the model's log_prob in the data's units."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import simple_diffusion as sd
from simple_diffusion import config
from simple_diffusion.data import encoders
from simple_diffusion.diffusion import likelihood, schedules
from simple_diffusion.model import DiffusionModel

SIGMA_MIN = 0.002


class Mixture:
    """A diagonal Gaussian mixture with its exact VE denoiser and exact blurred density."""

    def __init__(self, weights, means, stds):
        self.w = torch.tensor(weights, dtype=torch.float64)
        self.w = self.w / self.w.sum()
        self.mu = torch.tensor(means, dtype=torch.float64)
        self.s = torch.tensor(stds, dtype=torch.float64)

    def _components(self, x, sigma):
        var = self.s**2 + sigma**2
        log = torch.log(self.w) + (-0.5 * (x[:, None, :] - self.mu) ** 2 / var
                                   - 0.5 * torch.log(2 * math.pi * var)).sum(-1)
        return log, var

    def denoise(self, x, sigma):
        x = x.double()
        log, var = self._components(x, sigma)
        posterior = self.mu + self.s**2 / var * (x[:, None, :] - self.mu)
        return (torch.softmax(log, 1)[:, :, None] * posterior).sum(1)

    def log_density(self, x, sigma=SIGMA_MIN):
        return torch.logsumexp(self._components(x, sigma)[0], 1)

    def moments(self):
        mean = (self.w[:, None] * self.mu).sum(0)
        return mean, (self.w[:, None] * (self.s**2 + self.mu**2)).sum(0) - mean**2

    def draw(self, n, seed=0):
        g = torch.Generator().manual_seed(seed)
        k = torch.multinomial(self.w, n, True, generator=g)
        return self.mu[k] + self.s[k] * torch.randn(n, self.mu.shape[1], dtype=torch.float64, generator=g)


MIXTURES = {
    "1-D": Mixture([1, 2], [[-1.2], [0.6]], [[0.3], [0.45]]),
    "2-D": Mixture([1, 2, 1], [[-1.2, 0.5], [0.8, -0.3], [0.0, 1.5]], [[0.3, 0.6], [0.5, 0.4], [0.2, 0.2]]),
}


@pytest.mark.parametrize("name", MIXTURES)
def test_exact_denoiser_gives_the_true_log_density_to_a_thousandth_of_a_nat(name):
    mixture = MIXTURES[name]
    x = mixture.draw(600)
    mean, variance = mixture.moments()
    bar = RecordingBar()
    log_p = likelihood.log_likelihood(mixture.denoise, x, SIGMA_MIN, 80.0, data_mean=mean,
                                      data_variance=variance, bar=bar)
    assert float((log_p - mixture.log_density(x)).abs().max()) < 1e-3
    # The bar counts every row once, advancing as the solve climbs the noise levels.
    assert sum(bar.steps) == len(x) and len(bar.steps) > 5 and min(bar.steps) >= 0


class RecordingBar:
    def __init__(self):
        self.steps: list[int] = []

    def update(self, n: int) -> None:
        self.steps.append(n)


def test_hutchinson_is_unbiased_within_its_standard_error():
    mixture = MIXTURES["2-D"]
    x = mixture.draw(2000, seed=1)
    mean, variance = mixture.moments()
    error = likelihood.log_likelihood(mixture.denoise, x, SIGMA_MIN, 80.0, exact=False, rtol=1e-4,
                                      atol=1e-4, data_mean=mean, data_variance=variance)
    error = error - mixture.log_density(x)
    standard_error = float(error.std()) / math.sqrt(len(x))
    assert abs(float(error.mean())) < 4 * standard_error
    assert float(error.std()) > 0.01  # it is an estimate: each row has its own noise


@pytest.mark.parametrize("options", [
    {"scaling": "standardize"},
    {"scaling": "auto"},  # Yeo-Johnson on the two skewed columns
    {"scaling": "quantile"},
    {"scaling": "standardize", "bounds": {"a": (0.0, None), "b": (0.0, 1.0), "c": (None, 10.0)}},
])
def test_encoder_log_jacobians_match_finite_differences(options):
    rng = np.random.default_rng(0)
    data = torch.tensor(np.column_stack([rng.lognormal(size=800), rng.beta(2, 5, 800),
                                         10 - rng.lognormal(size=800)]))
    pipeline = encoders.fit(data, ["a", "b", "c"], **options)
    # Random values inside the range: the data rows themselves are the quantile map's knots,
    # where its slope changes and a central difference averages two slopes.
    low, high = data.quantile(0.02, dim=0), data.quantile(0.98, dim=0)
    uniform = torch.rand(50, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = low + (high - low) * uniform
    _, log_det = pipeline.forward_and_log_det(x)
    step = 1e-6
    numeric = torch.zeros(len(x), dtype=torch.float64)
    for j in range(3):
        shift = torch.zeros(3, dtype=torch.float64)
        shift[j] = step
        derivative = (pipeline.forward(x + shift)[:, j] - pipeline.forward(x - shift)[:, j]) / (2 * step)
        numeric += derivative.abs().log()
    torch.testing.assert_close(log_det, numeric, rtol=1e-4, atol=1e-4)


class ExactStandardNormal(torch.nn.Module):
    """A ``sample``-predicting network that is exact for N(0, 1) encoded data."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule
        self.unused = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def forward(self, x_t, t):
        alpha = 1 / (1 + self.schedule.t_to_sigma(t) ** 2).sqrt()
        return alpha.to(x_t.dtype) * x_t


def test_log_prob_is_in_the_data_units():
    """Data N(2, 3^2) standardised to N(0, 1): log_prob adds the encoder's -log 3."""
    cfg = config.override(config.preset("default"), {"model": {"prediction_type": "sample"}})
    schedule = schedules.cosine(1000)
    data = torch.tensor(np.random.default_rng(1).normal(2, 3, size=(5000, 1)))
    encoder = encoders.fit(data, ["x"])
    scale = float(encoder.steps[0].std[0])
    model = DiffusionModel(ExactStandardNormal(schedule), schedule, encoder, cfg, ["x"])
    x = torch.tensor([[2.0], [-1.0], [7.5]], dtype=torch.float64)
    z = (x - float(encoder.steps[0].mean[0])) / scale
    blurred = 1 + schedule.sigma_min**2
    truth = -0.5 * z[:, 0] ** 2 / blurred - 0.5 * math.log(2 * math.pi * blurred) - math.log(scale)
    torch.testing.assert_close(model.log_prob(x), truth, rtol=0, atol=1e-3)


def test_one_row_as_a_series_is_scored_by_its_names():
    """``model.log_prob(df.iloc[0])`` read the row's two cells as two rows of one column:
    "log_prob needs rows of 2 columns, got shape (2, 1)"."""
    rows = pd.DataFrame(np.random.default_rng(0).normal(size=(300, 2)), columns=["a", "b"])
    model = sd.fit(rows, steps=20, progress=False, verbose=False, num_samples=0)
    alone = model.log_prob(rows.iloc[:1])
    assert torch.equal(model.log_prob(rows.iloc[0]), alone)
    assert torch.equal(model.log_prob(rows.iloc[0][["b", "a"]]), alone)  # by name, not by place


def test_a_model_with_integer_columns_says_it_has_no_density_and_which_model_has_one(tmp_path):
    """The refusal named no column and no way out; its advice is now a model that has one (a
    count declared numeric, a date left out)."""
    path = tmp_path / "counts.csv"
    rng = np.random.default_rng(2)
    days = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 90, 200), "D")
    table = pd.DataFrame({"x": rng.normal(size=200), "count": rng.poisson(3, 200), "day": days})
    table.to_csv(path, index=False)
    model = sd.fit(str(path), config={"data": {"integer": ["count"]}}, epochs=1, progress=False)
    refused = r"no density: column 'count' takes whole values \(a probability mass, not a density\); a model "
    with pytest.raises(sd.UserError, match=refused + r"trained with (.*) has one, and one trained with (.*) "
                                                     r"the density of the rest given it") as refusal:
        model.log_prob(pd.read_csv(path).head(2))
    advice = str(refusal.value).split("trained with ")[1].removesuffix(" has one, and one ")
    assert advice == "columns=['x', 'count'], config={'data': {'numeric': ['count']}}"
    continuous = sd.fit(str(path), **eval(f"dict({advice})"), epochs=1, progress=False)  # as it says
    assert torch.isfinite(continuous.log_prob(pd.read_csv(path).head(2))).all()
    conditional = str(refusal.value).split("trained with ")[2].split(" the density")[0]
    assert conditional == "condition=['day'], config={'data': {'numeric': ['count']}}"  # the date kept


def test_a_flag_written_as_decimals_has_no_density_but_whole_years_have_one(tmp_path):
    """A 0/1 column written 0.0 and 1.0 (pandas' floats: statsmodels' survival table's
    ``censors``) was learnt as a number, so its two spikes silently entered the density; it is
    refused now, as the same column written 0 and 1 is, while ages in whole years (60 values)
    and a column declared numeric keep their density."""
    path = tmp_path / "survival.csv"
    rng = np.random.default_rng(3)
    table = pd.DataFrame({"x": rng.normal(size=300), "age": rng.integers(20, 80, 300).astype(float),
                          "censored": rng.integers(0, 2, 300).astype(float)})
    table.to_csv(path, index=False)
    assert ",1.0\n" in path.read_text()  # written as floats
    sd.fit(str(path), epochs=1, progress=False, verbose=False, num_samples=0, out=tmp_path / "run")
    model = sd.load(tmp_path / "run")  # what is refused survives the run folder
    rows = pd.read_csv(path).head(2)
    refused = (r"no density: column 'censored' takes a few whole values, each in many rows \(codes or "
               r"counts: a probability mass, not a density\); a model trained with (.*) has one$")
    with pytest.raises(sd.UserError, match=refused) as refusal:
        model.log_prob(rows)
    advice = str(refusal.value).split("trained with ")[1].removesuffix(" has one")
    assert advice == "config={'data': {'numeric': ['censored']}}"
    continuous = sd.fit(str(path), **eval(f"dict({advice})"), epochs=1, progress=False, verbose=False,
                        num_samples=0)
    assert torch.isfinite(continuous.log_prob(rows)).all()
    without = sd.fit(str(path), columns=["x", "age"], epochs=1, progress=False, verbose=False, num_samples=0)
    assert torch.isfinite(without.log_prob(rows[["x", "age"]])).all()


@pytest.fixture(scope="module")
def two_gaussians_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("likelihood") / "two"
    sd.fit("two_gaussians", epochs=40, seed=0, out=out, progress=False, num_samples=5000,
           likelihood_rows=300)
    return out


def test_evaluation_reports_the_held_out_nll_beside_the_truth(two_gaussians_run):
    import json

    result = json.loads((two_gaussians_run / "metrics.json").read_text())["likelihood"]
    assert result["rows"] == 300 and result["rows_without_density"] == 0
    assert result["true_nll_per_row"] == pytest.approx(2.05, abs=0.15)  # the target's entropy
    # A model trained for 40 epochs is close: its KL to the truth is small and not negative
    # beyond noise.
    assert -3 * result["kl_standard_error"] < result["kl_estimate"] < 0.1
    assert (two_gaussians_run / "density.png").stat().st_size > 10_000
    assert "held-out NLL" in (two_gaussians_run / "report.html").read_text()


def test_denoise_takes_float64_rows_as_float32_ones(two_gaussians_run):
    """``model.denoise`` is public: rows from NumPy come as float64, the network is float32."""
    model = sd.load(two_gaussians_run)
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)[:, None]
    for sigma in (0.05, 1.0):
        denoised = model.denoise(x, torch.tensor(sigma, dtype=torch.float64))
        assert denoised.dtype == torch.float64
        expected = model.denoise(x.float(), torch.tensor(sigma))
        assert torch.allclose(denoised, expected.double(), atol=1e-5)
        assert not torch.allclose(denoised, x, atol=1e-3)  # it denoised


def test_score_ranks_planted_outliers_below_the_inliers(two_gaussians_run, tmp_path, capsys):
    """Points 6 standard deviations beyond the outer modes, and in the gap between the modes,
    score below 99% of the target's own draws; an empty cell is not scored (nor listed)."""
    from simple_diffusion.cli import main
    from simple_diffusion.data import io

    inliers = sd.targets.draw("two_gaussians", 1000, seed=9).numpy()
    planted = np.array([[-10.0], [10.0], [0.0], [-0.5]])
    path = tmp_path / "rows.csv"
    io.write_table(str(path), np.vstack([inliers, planted, [[np.nan]]]), ["x"])
    main(["score", str(two_gaussians_run), "--data", str(path), "-o", str(tmp_path / "scored.csv"),
          "--lowest", "4", "--tolerance", "1e-4"])
    scored = np.genfromtxt(tmp_path / "scored.csv", delimiter=",", skip_header=1)
    inlier_scores, planted_scores = scored[:1000, 1], scored[1000:1004, 1]
    assert (planted_scores < np.quantile(inlier_scores, 0.01)).all() and np.isnan(scored[1004, 1])
    out, err = capsys.readouterr()
    assert "not scored: 1 row with a missing cell" in err and "log-density: 100%" in err  # a bar
    assert all(line.startswith("line ") for line in out.splitlines())  # the CSV's, after its header
    listed = [int(line.split()[1][:-1]) - 2 for line in out.splitlines()]
    assert len(listed) == 4 and 1004 not in listed and {1000, 1001} <= set(listed)
    assert (tmp_path / "scored.png").read_bytes()[:4] == b"\x89PNG"


def test_score_refuses_bad_input_in_one_line_before_any_work(two_gaussians_run, tmp_path, capsys,
                                                             monkeypatch):
    from simple_diffusion.cli import main

    def never(*args, **kwargs):
        raise AssertionError("log_prob ran before the output format was checked")

    rows = tmp_path / "rows.csv"
    rows.write_text("x\n1.0\n2.0\n")
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n3,4\n")
    cases = [
        (["--data", str(rows), "-o", str(tmp_path / "out.yaml")], "unsupported file type .yaml"),
        (["--data", str(other), "-o", str(tmp_path / "o.csv")],
         "the model's columns are x; its columns are a, b"),
        (["--data", str(tmp_path / "none.csv"), "-o", str(tmp_path / "o.csv")], "data file not found"),
        (["--data", str(rows), "-o", str(tmp_path / "o.csv"), "--conditional"],
         "learnt no condition (train it with --condition COL,...)"),
    ]
    monkeypatch.setattr(DiffusionModel, "log_prob", never)
    for arguments, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            main(["score", str(two_gaussians_run), *arguments])
        err = capsys.readouterr().err
        assert exit_info.value.code == 1 and message in err and len(err.strip().splitlines()) == 1
