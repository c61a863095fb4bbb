"""Every preprocessing option: transform then inverse returns the data; outputs respect options."""

import numpy as np
import pytest
import torch

import simple_diffusion as sd
from simple_diffusion import preprocess


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
    "quantile": {"scaling": "quantile", "keep_constant": True},
    "bounds": {"bounds": {"skewed": (0.0, None), "fraction": (0.0, 1.0), "plain": (None, 100.0)},
               "keep_constant": True},
    "integer": {"integer": ["count"], "keep_constant": True},
    "everything": {"scaling": "quantile", "bounds": {"skewed": (0.0, None), "fraction": (0.0, 1.0)},
                   "integer": ["count"], "keep_constant": True},
}


@pytest.mark.parametrize("name", OPTIONS)
def test_round_trip(table, name):
    pipeline = preprocess.fit(table, COLUMNS, **OPTIONS[name])
    restored = preprocess.from_state(pipeline.state()).inverse(pipeline.forward(table))
    assert torch.allclose(restored, table, atol=1e-6, rtol=1e-6)


def test_standardised_columns_have_zero_mean_unit_std(table):
    y = preprocess.fit(table, COLUMNS, keep_constant=True).forward(table)
    assert y.shape[1] == 4  # the constant column is not modelled
    assert torch.allclose(y.mean(0), torch.zeros(4, dtype=y.dtype), atol=1e-9)
    assert torch.allclose(y.std(0), torch.ones(4, dtype=y.dtype), atol=1e-9)


def test_quantile_output_is_standard_normal(table):
    y = preprocess.fit(table[:, :4], COLUMNS[:4], scaling="quantile").forward(table[:, :4])
    assert torch.allclose(y[:, 1].mean(), torch.tensor(0.0, dtype=y.dtype), atol=0.02)
    assert abs(float(y[:, 1].std()) - 1) < 0.05


def test_inverse_respects_bounds_and_integers_for_any_latent_value(table):
    pipeline = preprocess.fit(table, COLUMNS, **OPTIONS["everything"])
    wild = torch.randn(5000, pipeline.transformed_dim, dtype=torch.float64) * 10
    x = pipeline.inverse(wild)
    assert bool((x[:, 1] >= 0).all()) and bool(((x[:, 2] >= 0) & (x[:, 2] <= 1)).all())
    assert torch.equal(x[:, 3], torch.round(x[:, 3]))
    assert bool((x[:, 4] == 7.5).all())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "column 'constant' is constant.*--keep-constant"),
        ({"bounds": {"plain": (6.0, None)}, "keep_constant": True}, "outside its bounds"),
        ({"bounds": {"fraction": (1.0, 0.0)}, "keep_constant": True}, "lower must be below"),
        ({"integer": ["nope"], "keep_constant": True}, "names column 'nope'"),
    ],
)
def test_bad_options(table, kwargs, message):
    with pytest.raises(sd.UserError, match=message):
        preprocess.fit(table, COLUMNS, **kwargs)


@pytest.mark.parametrize(("text", "parsed"), [
    ("mass=0:", {"mass": (0.0, None)}),
    ("a=0:1, b=:5", {"a": (0.0, 1.0), "b": (None, 5.0)}),
])
def test_parse_bounds(text, parsed):
    assert preprocess.parse_bounds(text) == parsed


@pytest.mark.parametrize("text", ["mass", "mass=a:b", "=0:1"])
def test_parse_bounds_refuses(text):
    with pytest.raises(sd.UserError, match="bounds"):
        preprocess.parse_bounds(text)


def test_model_samples_respect_bounds_integers_and_constants(tmp_path, table):
    sd.fit(table.numpy(), config={
        "train": {"epochs": 3}, "data": {"bounds": "x2=0:,x3=0:1", "integer": ["x4"], "keep_constant": True,
                                         "preprocess": "quantile"}}, progress=False, out=tmp_path / "r")
    x = sd.load(tmp_path / "r").sample(4000, seed=0)
    assert x.shape == (4000, 5)
    assert bool((x[:, 1] >= 0).all()) and bool(((x[:, 2] >= 0) & (x[:, 2] <= 1)).all())
    assert torch.equal(x[:, 3], torch.round(x[:, 3])) and bool((x[:, 4] == 7.5).all())
