"""Every column encoder option: transform then inverse returns the data; outputs respect options."""

import numpy as np
import pandas as pd
import pytest
import torch

import simple_diffusion as sd
from simple_diffusion.data import encoders, io


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    n = 2000
    return torch.tensor(np.column_stack([
        rng.normal(5, 2, n),                       # plain
        rng.lognormal(0, 1, n),                    # skewed, positive
        rng.beta(2, 5, n),                         # in [0, 1]
        rng.poisson(3, n).astype(float),           # integer
        np.full(n, 7.5),                           # constant
    ]))


COLUMNS = ["plain", "skewed", "fraction", "count", "constant"]
OPTIONS = {
    "none": {"scaling": "none"},
    "standardize": {"scaling": "standardize", "keep_constant": True},
    "auto": {"scaling": "auto", "keep_constant": True},  # the skewed column: Yeo-Johnson
    "quantile": {"scaling": "quantile", "keep_constant": True},
    "bounds": {"bounds": {"skewed": (0.0, None), "fraction": (0.0, 1.0), "plain": (None, 100.0)},
               "keep_constant": True},
    "integer": {"integer": ["count"], "keep_constant": True},
    "decimals": {"decimals": {"constant": 1, "count": 0}, "keep_constant": True},
    "everything": {"scaling": "quantile", "bounds": {"skewed": (0.0, None), "fraction": (0.0, 1.0)},
                   "integer": ["count"], "keep_constant": True, "decimals": {"constant": 1}},
}


@pytest.mark.parametrize("name", OPTIONS)
def test_round_trip(table, name):
    pipeline = encoders.fit(table, COLUMNS, **OPTIONS[name])
    restored = encoders.from_state(pipeline.state()).inverse(pipeline.forward(table))
    assert torch.allclose(restored, table, atol=1e-6, rtol=1e-6)


def test_standardised_columns_have_zero_mean_unit_std(table):
    y = encoders.fit(table, COLUMNS, keep_constant=True).forward(table)
    assert y.shape[1] == 4  # the constant column is not modelled
    assert torch.allclose(y.mean(0), torch.zeros(4, dtype=y.dtype), atol=1e-9)
    assert torch.allclose(y.std(0), torch.ones(4, dtype=y.dtype), atol=1e-9)


def test_quantile_output_is_standard_normal(table):
    y = encoders.fit(table[:, :4], COLUMNS[:4], scaling="quantile").forward(table[:, :4])
    assert torch.allclose(y[:, 1].mean(), torch.tensor(0.0, dtype=y.dtype), atol=0.02)
    assert abs(float(y[:, 1].std()) - 1) < 0.05


def test_inverse_respects_bounds_and_integers_for_any_latent_value(table):
    pipeline = encoders.fit(table, COLUMNS, **OPTIONS["everything"])
    wild = torch.randn(5000, pipeline.transformed_dim, dtype=torch.float64) * 10
    x = pipeline.inverse(wild)
    assert bool((x[:, 1] >= 0).all()) and bool(((x[:, 2] >= 0) & (x[:, 2] <= 1)).all())
    assert torch.equal(x[:, 3], torch.round(x[:, 3]))
    assert bool((x[:, 4] == 7.5).all())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, r"column 'constant' is constant.*pass config=\{'data': \{'keep_constant': True\}\} to pass it"),
        ({"bounds": {"plain": (6.0, None)}, "keep_constant": True}, "outside its bounds"),
        ({"bounds": {"fraction": (1.0, 0.0)}, "keep_constant": True}, "lower must be below"),
        ({"integer": ["nope"], "keep_constant": True}, "names column 'nope'"),
    ],
)
def test_bad_options(table, kwargs, message):
    with pytest.raises(sd.UserError, match=message):
        encoders.fit(table, COLUMNS, **kwargs)


@pytest.mark.parametrize(("text", "parsed"), [
    ("mass=0:", {"mass": (0.0, None)}),
    ("a=0:1, b=:5", {"a": (0.0, 1.0), "b": (None, 5.0)}),
    ('"weight, kg"=0:,b=:5', {"weight, kg": (0.0, None), "b": (None, 5.0)}),  # a name with a comma
])
def test_parse_bounds(text, parsed):
    assert encoders.parse_bounds(text) == parsed


@pytest.mark.parametrize("text", ["mass", "mass=a:b", "=0:1"])
def test_parse_bounds_refuses(text):
    with pytest.raises(sd.UserError, match="bounds"):
        encoders.parse_bounds(text)


def test_model_samples_respect_bounds_integers_and_constants(tmp_path, table):
    sd.fit(table.numpy(), config={
        "train": {"epochs": 3}, "data": {"bounds": "x2=0:,x3=0:1", "integer": ["x4"], "keep_constant": True,
                                         "preprocess": "quantile"}}, progress=False, out=tmp_path / "r",
        num_samples=0)  # what is sampled from the folder is checked here, not its evaluation
    x = sd.load(tmp_path / "r").sample(4000, seed=0)
    assert x.shape == (4000, 5)
    assert bool((x[:, 1] >= 0).all()) and bool(((x[:, 2] >= 0) & (x[:, 2] <= 1)).all())
    assert torch.equal(x[:, 3], torch.round(x[:, 3])) and bool((x[:, 4] == 7.5).all())


def test_samples_are_written_with_the_decimal_places_of_the_data():
    """Columns recorded to 1 and 3 places come back so; one of full-precision floats, and every
    log-determinant (the density is the continuous model's), as without rounding."""
    rng = np.random.default_rng(0)
    x = torch.tensor(np.column_stack([rng.normal(5, 1, 500).round(1), rng.normal(size=500),
                                      rng.normal(size=500).round(3)]))
    rounding = encoders.fit(x, ["a", "b", "c"], decimals={"a": 1, "c": 3})
    plain = encoders.fit(x, ["a", "b", "c"])
    latent = torch.randn(1000, 3, dtype=torch.float64) * 3
    written, exact = rounding.inverse(latent), plain.inverse(latent)
    assert torch.equal(written[:, 0], torch.round(exact[:, 0], decimals=1))
    assert torch.equal(written[:, 2], torch.round(exact[:, 2], decimals=3))
    assert torch.equal(written[:, 1], exact[:, 1]) and not torch.equal(written[:, 0], exact[:, 0])
    tiny = encoders.Decimals([0], [3]).inverse(torch.tensor([[-1e-9]], dtype=torch.float64))
    assert tiny[0, 0] == 0 and not torch.signbit(tiny[0, 0])  # written 0.0, not -0.0
    assert torch.equal(rounding.forward_and_log_det(x)[1], plain.forward_and_log_det(x)[1])
    values = ([5.1, 3.25], [2.0], [1 / 3])
    places = [encoders.decimal_places(torch.tensor(v, dtype=torch.float64)) for v in values]
    assert places == [2, 0, None]
    values = ([3.469e-07, 1.2e-05], [6.02e23, -1.5e-30], [1 / 3], [5.1])
    digits = [encoders.significant_digits(torch.tensor(v, dtype=torch.float64)) for v in values]
    assert digits == [4, 3, None, 2]


def test_a_model_writes_samples_as_the_data_was_written_unless_told_otherwise():
    """Places from the observed cells: a column with gaps (filled for training with values
    between its own) was written at full precision. A column of tiny numbers with four
    significant digits (beyond six places) comes back with four."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"length": rng.normal(5, 1, 300).round(1), "mass": rng.normal(size=300),
                          "width": rng.normal(2, 1, 300).round(2).astype("float32"),
                          "rate": [float(f"{v:.3e}") for v in rng.lognormal(-15, 1, 300)]})
    frame.loc[::10, "length"] = np.nan
    samples = sd.fit(frame, steps=30, progress=False).sample(500, seed=0)
    assert samples["length"].isna().any()
    assert (samples["length"].dropna() == samples["length"].dropna().round(1)).all()
    # a float32 column: 2 places as float32 numbers (a float32 2.31 is 2.3099999 as a float64)
    width = samples["width"].to_numpy()
    assert width.dtype == np.float32
    assert np.array_equal(width, np.round(width.astype(np.float64), 2).astype(np.float32))
    assert not (samples["mass"] == samples["mass"].round(6)).all()
    rate = torch.tensor(samples["rate"].to_numpy())
    assert torch.equal(encoders.significant(rate, 4), rate)
    assert not torch.equal(encoders.significant(rate, 3), rate)
    full = sd.fit(frame, steps=30, progress=False, config={"data": {"round_to_data": False}})
    unrounded = full.sample(500, seed=0)
    assert not (unrounded["length"] == samples["length"]).all()
    assert not torch.equal(encoders.significant(torch.tensor(unrounded["rate"].to_numpy()), 4),
                           torch.tensor(unrounded["rate"].to_numpy()))


def test_a_skewed_column_is_made_symmetric_and_every_column_comes_back_within_its_range():
    """A heavy right tail (lognormal, skewness about 6) goes through a power transform before
    standardising, a column skewed less than an exponential does not; latent values far outside
    the data come back finite and, clipped, within each column's training range."""
    rng = np.random.default_rng(0)
    x = torch.tensor(np.column_stack([rng.lognormal(0, 1.5, 2000), rng.gamma(4.0, size=2000),
                                      rng.normal(size=2000)]))
    clipped = encoders.fit(x, ["tail", "gamma", "normal"], clip=True)
    power = [step for step in clipped.steps if isinstance(step, encoders.YeoJohnson)]
    # The likelihood's exponent for this tail is below 0, held at 0 (a logarithm): POWER_EXPONENTS
    assert len(power) == 1 and power[0].columns == [0] and power[0].lambdas == [0.0]
    skewness = lambda v: float(((v - v.mean()) ** 3).mean() / v.std() ** 3)  # noqa: E731
    assert abs(skewness(clipped.forward(x)[:, 0])) < 1.5 and skewness(x[:, 0]) > 5
    wild = torch.randn(5000, 3, dtype=torch.float64) * 10
    inside = clipped.inverse(wild)
    assert bool(((inside >= x.amin(0)) & (inside <= x.amax(0))).all())
    free = encoders.fit(x, ["tail", "gamma", "normal"]).inverse(wild)
    assert bool(free.isfinite().all())
    assert bool((free[:, 2] > x[:, 2].max()).any()) and bool((free[:, 2] < x[:, 2].min()).any())
    width = x[:, 0].max() - x[:, 0].min()  # the inverse's own limit: the range widened by its width
    assert bool((free[:, 0] <= x[:, 0].max() + width + 1e-6).all())


def test_samples_stay_within_the_data_unless_told_to_extrapolate():
    """A population (a quarter 0, the rest 1 to 7,300): without the clip and the power transform
    30% of these samples fell below 0 (4% with the transform alone), and ages left their range."""
    rng = np.random.default_rng(0)
    population = np.where(rng.random(900) < 0.25, 0.0, np.round(np.exp(rng.normal(3, 2, 900)).clip(1, 7300)))
    frame = pd.DataFrame({"population": population, "age": rng.normal(45, 15, 900).round()})
    samples = sd.fit(frame, steps=300, progress=False).sample(3000, seed=0)
    for column in frame:
        assert samples[column].between(frame[column].min(), frame[column].max()).all()
    free = sd.fit(frame, steps=300, progress=False, config={"data": {"clip_to_range": False}})
    assert not free.sample(3000, seed=0)["age"].between(frame["age"].min(), frame["age"].max()).all()


@pytest.mark.parametrize("offset", [0.0, 1e12])
def test_quantile_map_of_a_tied_value_is_the_middle_of_its_mass(offset):
    """Half the rows share one value: it maps to the normal quantile of 1/4 (the middle of the
    lower half), also where the magnitude (1e12) leaves float64 no room to spread ties."""
    from scipy import stats

    rng = np.random.default_rng(0)
    x = offset + np.concatenate([np.zeros(1000), 1 + rng.uniform(size=1000)])
    pipeline = encoders.fit(torch.tensor(x[:, None]), ["c"], scaling="quantile")
    y = pipeline.forward(torch.tensor(x[:, None]))[:, 0].numpy()
    assert y[0] == pytest.approx(stats.norm.ppf(0.25), abs=0.02)
    order = np.argsort(x, kind="stable")
    assert (np.diff(y[order]) >= 0).all()  # monotone
    back = pipeline.inverse(torch.tensor(y[:, None]), written=False)[:, 0].numpy()  # the value itself
    assert np.array_equal(back[:1000], x[:1000])  # the tied value exactly
    assert np.allclose(back, x, rtol=0, atol=1e-9 * max(1.0, offset))  # the rest to a few ulps


def test_a_value_on_a_bound_stays_next_to_its_neighbours():
    """10% of a fraction column sits exactly at 0. The margin is half the gap to the nearest value
    inside, so those rows land ln 3 logit units below it (about 0.6 standard deviations here);
    the old fixed margin of 1e-3 standard deviations put them about 1.3 out."""
    rng = np.random.default_rng(1)
    fraction = np.concatenate([np.zeros(200), rng.beta(2, 5, 1800)])
    pipeline = encoders.fit(torch.tensor(fraction[:, None]), ["f"], bounds={"f": (0.0, 1.0)})
    y = pipeline.forward(torch.tensor(fraction[:, None]))[:, 0].numpy()
    on_bound, inside = y[:200], y[200:]
    assert inside.min() - on_bound.max() < 0.8
    samples = pipeline.inverse(torch.tensor([[-40.0], [-5.0], [40.0]], dtype=torch.float64))
    assert samples[0, 0] == 0.0  # the data has mass on the bound, and so may the samples


def test_samples_never_reach_a_bound_the_data_never_touches():
    rng = np.random.default_rng(2)
    share = rng.beta(2, 5, 2000)[:, None]
    positive = rng.lognormal(size=2000)[:, None] + 1000  # exp(y) is lost against 1000 near the bound
    pipeline = encoders.fit(torch.tensor(np.hstack([share, positive])), ["s", "p"],
                              bounds={"s": (0.0, 1.0), "p": (1000.0, None)})
    extreme = torch.tensor([[-800.0, -800.0], [800.0, -60.0]], dtype=torch.float64)
    back = pipeline.inverse(extreme).numpy()
    assert (back[:, 0] > 0).all() and (back[:, 0] < 1).all()
    assert (back[:, 1] > 1000).all()


def significant_digits(cell: str) -> int:
    """Digits of a number as written, leading and trailing zeros aside: "0.00120" has 2."""
    mantissa = cell.lstrip("-").split("e")[0].replace(".", "")
    return len(mantissa.strip("0"))


def test_written_samples_keep_the_datas_places_and_nine_significant_digits_else(tmp_path):
    """Samples went to a CSV through "%.9g": a column recorded to cents above ten million lost
    its cents (12345678.91 written 12345678.9) and a constant column its own value
    (1234567890.12345 written 1.23456789e+09). Now every number is written to its last digit,
    and the model's own numbers are rounded first: to the data's places, else to nine
    significant digits (before the training range, whose ends are the data's numbers)."""
    rng = np.random.default_rng(0)
    n = 500
    x = torch.tensor(np.column_stack([
        np.round(rng.uniform(1.2e7, 1.3e7, n), 2),          # money: cents above ten million
        rng.normal(0, 1e3, n),                               # free: a simulation's floats
        np.full(n, 1234567890.12345),                        # constant
        rng.integers(10**10, 10**10 + 50, n).astype(float),  # count: whole, eleven digits
    ]))
    names = ["money", "free", "constant", "count"]
    pipeline = encoders.fit(x, names, decimals={"money": 2}, integer=["count"], keep_constant=True, clip=True)
    latent = pipeline.forward(x) + 0.3 * torch.randn(n, pipeline.transformed_dim, dtype=torch.float64,
                                                     generator=torch.Generator().manual_seed(0))
    y = pipeline.inverse(latent)
    assert float(y[:, 1].max()) <= float(x[:, 1].max()) and float(y[:, 1].min()) >= float(x[:, 1].min())
    io.write_table(str(tmp_path / "s.csv"), y.numpy(), names)
    lines = (tmp_path / "s.csv").read_text().splitlines()
    cells = [line.split(",") for line in lines[1:]]
    assert [float(c) for row in cells for c in row] == y.flatten().tolist()  # nothing lost in writing
    assert all(float(row[0]) == round(float(row[0]), 2) for row in cells)
    ends = {float(x[:, 1].min()), float(x[:, 1].max())}  # the data's own numbers, to their last digit
    assert max(significant_digits(row[1]) for row in cells if float(row[1]) not in ends) <= 9
    assert {row[2] for row in cells} == {"1234567890.12345"}
    assert all(float(row[3]) == int(float(row[3])) and float(row[3]) >= 1e10 for row in cells)
