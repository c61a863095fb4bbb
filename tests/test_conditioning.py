"""Conditioning: learnt condition columns with guidance, given cells in-painted, filled gaps,
and the calibration checks, against closed-form conditionals."""

from __future__ import annotations

import copy
import json
import math
import shutil
import warnings
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import cli

import simple_diffusion as sd
from simple_diffusion import UserError, api, build, config
from simple_diffusion.data.columns import to_frame
from simple_diffusion.diffusion.objective import CellMasks, ColumnCondition
from simple_diffusion.evaluation import calibration
from simple_diffusion.runs import RunFolder

QUICK = {"train": {"steps": 3000, "batch_size": 128}}
"""Enough steps for a 1-D conditional of a Gaussian (a couple of seconds)."""


def gaussian_pairs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """theta ~ N(0, 1), c = theta + N(0, 0.5^2): theta | c ~ N(0.8 c, 0.2)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(n, 1))
    return theta, theta + 0.5 * rng.normal(size=(n, 1))


@pytest.fixture(scope="module")
def posterior_model():
    theta, c = gaussian_pairs(4000)
    return sd.fit(theta, condition=c, config=QUICK, progress=False)


def test_conditional_samples_follow_the_closed_form_conditional(posterior_model):
    n = 4000
    conditions = np.array([[-1.5], [0.0], [1.0], [2.0]])
    draws = posterior_model.sample(n, given=conditions, seed=0)
    assert draws.shape == (4 * n, 2) and posterior_model.columns == ["x1", "c1"]
    for i, c in enumerate(conditions[:, 0]):
        theta = draws[i * n : (i + 1) * n, 0].numpy()
        assert np.all(draws[i * n : (i + 1) * n, 1].numpy() == c)  # the condition as given
        # Model error (a few hundredths) plus four standard errors of n draws.
        assert abs(theta.mean() - 0.8 * c) < 0.06 + 4 * math.sqrt(0.2 / n)
        assert abs(theta.var() / 0.2 - 1) < 0.15 + 4 * math.sqrt(2 / n)


def test_a_distilled_student_samples_the_closed_form_conditional_and_the_joint(posterior_model):
    """The student of a conditional model learns the teacher's paths given conditions drawn from
    the teacher's own joint (and, on a fifth of its pairs, the joint): one network evaluation
    gives theta | c ~ N(0.8 c, 0.2) and, at guidance 0, theta's marginal N(0, 1)."""
    model = sd.distill(copy.deepcopy(posterior_model), pairs=16_384, train_steps=1500, progress=False)
    assert model.student.conditional and model.student.network_evaluations == 1
    n = 4000
    conditions = np.array([[-1.5], [0.0], [2.0]])
    calls = []
    hook = model.student.net.register_forward_hook(lambda *args: calls.append(1))
    try:
        draws = model.sample(n, given=conditions, sampler="distilled", seed=0, chunk_size=3 * n)
    finally:
        hook.remove()
    assert len(calls) == 1  # the conditions in one batch, one evaluation
    for i, c in enumerate(conditions[:, 0]):
        theta = draws[i * n : (i + 1) * n, 0].numpy()
        assert np.all(draws[i * n : (i + 1) * n, 1].numpy() == c)
        # The teacher's model error (0.04), the student's (0.1 at c = 2, where the joint puts few
        # conditions: 1.8 standard deviations out), and four standard errors of n draws.
        assert abs(theta.mean() - 0.8 * c) < 0.12 + 4 * math.sqrt(0.2 / n)
        assert abs(theta.var() / 0.2 - 1) < 0.25 + 4 * math.sqrt(2 / n)
    joint = model.sample(n, given=conditions[:1], sampler="distilled", guidance=0, seed=0)[:, 0].numpy()
    assert abs(joint.mean()) < 0.1 + 4 / math.sqrt(n) and abs(joint.var() - 1) < 0.25 + 4 * math.sqrt(2 / n)
    with pytest.raises(UserError, match=r"draws rows given all of the condition columns \(c1\) and nothing "
                                        r"else; for other given cells \(filling gaps, in-painting\)"):
        model.sample(10, given={"x1": 0.5, "c1": 1.0}, sampler="distilled")
    with pytest.raises(UserError, match="given all of the condition columns"):
        model.sample(10, given={"x1": 0.5}, sampler="distilled")
    with pytest.raises(UserError, match=r"follows its model at guidance 1, the guidance it was distilled "
                                        r"with .* for guidance 2 choose another sampler"):
        model.sample(10, given=[[1.0]], sampler="distilled", guidance=2)


def _density_moments(model, grid: np.ndarray, given) -> tuple[float, float, float]:
    """The mass, mean and variance of log_prob(grid, given=...) over a fine grid."""
    density = np.exp(model.log_prob(grid, given=given, rtol=1e-4, atol=1e-4).numpy())
    mass = np.trapezoid(density, grid)
    mean = np.trapezoid(grid * density, grid) / mass
    return mass, mean, np.trapezoid((grid - mean) ** 2 * density, grid) / mass


def test_a_posteriors_density_is_normalised_and_follows_its_condition(posterior_model):
    """log p(theta | c) through the conditional flow: a density over theta for each c (mass 1:
    leaving out c's own Jacobian would scale it by c's standard deviation, 1.12), centred where
    the closed form is (theta | c ~ N(0.8 c, 0.2); the model error of the sampling test)."""
    for c in (-1.5, 1.0):
        mass, mean, variance = _density_moments(posterior_model, np.linspace(0.8 * c - 4, 0.8 * c + 4, 401),
                                                [[c]])
        assert abs(mass - 1) < 2e-3
        assert abs(mean - 0.8 * c) < 0.06 and abs(variance / 0.2 - 1) < 0.15


def test_a_posteriors_density_takes_its_samples_rows_and_refuses_rows_that_contradict_it(posterior_model):
    draws = posterior_model.sample(20, given=[[1.0]], seed=0)
    whole = posterior_model.log_prob(draws, given=[[1.0]], rtol=1e-4, atol=1e-4)
    assert torch.equal(whole, posterior_model.log_prob(draws[:, 0], given=[[1.0]], rtol=1e-4, atol=1e-4))
    # One condition per row: theta = 0.8 is the mode given c = 1 and 4 standard deviations out
    # given c = -1 (closed form: -0.12 and -6.2 nats); the solver's steps follow the batch, so
    # the row alone differs within its tolerance (0.05 nats at 1e-4 there, 0.008 at 1e-5).
    per_row = posterior_model.log_prob([[0.8], [0.8]], given=[[1.0], [-1.0]])
    alone = posterior_model.log_prob([[0.8]], given=[[-1.0]])
    assert abs(per_row[1] - alone[0]) < 0.02 and per_row[1] < per_row[0] - 4
    with pytest.raises(UserError, match="row 1 has c1 = 1, but it is given as -1"):
        posterior_model.log_prob(draws, given=[[-1.0]])
    with pytest.raises(UserError, match=r"one condition for every row or one per row \(20\), got 2"):
        posterior_model.log_prob(draws, given=[[1.0], [2.0]])


def test_a_density_given_a_category_is_one_per_label(kinds_run):
    """value | kind: N(-2, 0.25) for a, N(2, 0.25) for b; a model with a categorical column
    had no density at all before, now one for its numbers given the label."""
    model = RunFolder(kinds_run / "run").load_model()
    for label, centre in (("a", -2.0), ("b", 2.0)):  # 7 standard deviations either side
        mass, mean, variance = _density_moments(model, np.linspace(centre - 3.5, centre + 3.5, 281),
                                                {"kind": label})
        assert abs(mass - 1) < 2e-3 and abs(mean - centre) < 0.1 and abs(variance / 0.25 - 1) < 0.2
    with pytest.raises(UserError, match=r"^log_prob given kind needs the other columns: no column 'value' "
                                        r"\(did you mean 'valeu'\?\)$"):
        model.log_prob(pd.DataFrame({"kind": ["a"], "valeu": [1.0]}), given={"kind": "a"})
    with pytest.raises(UserError, match=r"^log_prob given value needs a model that learnt them as its "
                                        r"condition \(this one's: kind\)"):  # before the rows' checks
        model.log_prob(pd.DataFrame({"kind": ["a"], "value": [2.0]}), given={"value": 1.0})


def test_score_conditional_scores_each_row_given_its_own_condition(kinds_run, capsys):
    """value | kind is N(-2, 0.25) or N(2, 0.25): each row's score is that density at its
    value (within the model's error); a row without its label is not scored; without
    --conditional the table has no density, and the refusal says where one is."""
    rows = kinds_run / "rows.csv"
    pd.DataFrame({"id": [1, 2, 3, 4], "kind": ["a", "b", "b", None], "value": [-2.0, 2.5, -2.0, 0.0]}).to_csv(
        rows, index=False)
    assert cli(["score", str(kinds_run / "run"), "--data", str(rows), "-o", str(kinds_run / "s.csv"),
                "--conditional"]) == 0
    scored = pd.read_csv(kinds_run / "s.csv")
    truth = -0.5 * np.array([0.0, 0.5]) ** 2 / 0.25 - 0.5 * math.log(2 * math.pi * 0.25)
    assert list(scored["id"]) == [1, 2, 3, 4] and np.isnan(scored["log_density"][3])
    assert np.abs(scored["log_density"][:2] - truth).max() < 0.15
    assert scored["log_density"][2] < -10  # kind a's value, 8 standard deviations out for b (-32)
    capsys.readouterr()
    assert cli(["score", str(kinds_run / "run"), "--data", str(rows), "-o", str(kinds_run / "s.csv")]) == 1
    err = capsys.readouterr().err
    assert "`score --conditional` gives the density of the other columns given kind" in err


def test_the_joint_s_refusal_points_to_the_density_given_the_condition_only_where_there_is_one():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"kind": rng.choice(["a", "b"], 200), "value": rng.normal(size=200),
                          "flag": rng.choice(["y", "n"], 200)})
    model = sd.fit(frame, condition=["kind"], epochs=1, progress=False, num_samples=0)
    with pytest.raises(UserError) as refusal:  # flag, not given, has no density either
        model.log_prob(frame)
    assert "column 'kind' is categorical" in str(refusal.value)
    assert "gives the density of the other columns given kind" not in str(refusal.value)
    assert str(refusal.value).endswith("one trained with condition=['kind', 'flag'] the density of the rest "
                                       "given them (log_prob(x, given=...))")  # both labels its condition


def test_a_density_given_cells_a_model_did_not_learn_as_its_condition_is_refused():
    model = sd.fit(np.random.default_rng(0).normal(size=(300, 2)), epochs=1, progress=False, num_samples=0)
    with pytest.raises(UserError, match=r"needs a model that learnt them as its condition \(this one's: "
                                        r"none\); train it with condition=\['x2'\]"):
        model.log_prob(np.zeros(3), given={"x2": 0.0})


def test_guidance_zero_is_the_unconditional_model_and_above_one_extrapolates(posterior_model):
    unconditional = posterior_model.sample(3000, seed=1)
    ignored = posterior_model.sample(3000, given=[[2.0]], guidance=0, seed=1)
    assert torch.equal(ignored[:, 0], unconditional[:, 0])
    assert abs(unconditional[:, 0].var().item() - 1) < 0.15  # the joint's theta marginal: N(0, 1)
    plain = posterior_model.sample(3000, given=[[2.0]], guidance=1, seed=1)[:, 0].mean()
    guided = posterior_model.sample(3000, given=[[2.0]], guidance=2, seed=1)[:, 0].mean()
    assert guided > plain + 0.1  # guidance pushes further from the unconditional mean
    with pytest.raises(UserError, match=r"^sample.guidance must not be negative"):
        posterior_model.sample(10, given=[[2.0]], guidance=-1)


def test_guidance_of_a_model_without_a_condition_is_refused():
    """It was ignored, silently: a user asking for sharper samples got the same ones."""
    model = sd.fit(gaussian_pairs(300)[0], steps=50, progress=False, num_samples=0)
    with pytest.raises(UserError, match=r"^guidance steers a learnt condition, and this model learnt none"):
        model.sample(10, guidance=2)


def test_a_loaded_conditional_model_samples_as_the_trained_one(tmp_path):
    theta, c = gaussian_pairs(500)
    model = sd.fit(theta, condition=c, config={"train": {"steps": 200}}, progress=False,
                   out=tmp_path / "run", num_samples=0)
    loaded = sd.load(tmp_path / "run").to(model.device)  # where a GPU trained it, on the GPU
    assert loaded.condition_columns == ["c1"]
    assert torch.equal(loaded.sample(100, given=[[0.5]], seed=3), model.sample(100, given=[[0.5]], seed=3))
    # A file of conditions without the model's names (.npy): its columns are the condition's.
    np.save(tmp_path / "given.npy", np.array([[0.5], [-1.0]]))
    assert cli(["sample", str(tmp_path / "run"), "-n", "100", "-o", str(tmp_path / "out.npy"),
                "--given", str(tmp_path / "given.npy"), "--seed", "3", "--quiet"]) == 0
    written = np.load(tmp_path / "out.npy")
    assert written.shape == (200, 2) and (written[:100, 1] == 0.5).all() and (written[100:, 1] == -1).all()
    assert np.array_equal(written[:100], model.sample(100, given=[[0.5], [-1.0]], seed=3)[:100].numpy())


def test_condition_inputs_hide_dropped_rows_and_mask_their_loss():
    condition = ColumnCondition([0, 2], dropout=0.25)
    z = torch.arange(12.0).reshape(4, 3)
    shown = condition.draw_shown(100_000, torch.Generator().manual_seed(0))
    assert abs((~shown).float().mean().item() - 0.25) < 4 * math.sqrt(0.25 * 0.75 / 100_000)
    flags = torch.tensor([True, False, True, False])
    assert condition.inputs(z, flags).tolist() == [[0, 2, 1], [0, 0, 0], [6, 8, 1], [0, 0, 0]]
    assert condition.loss_weights(z, flags)[:, [0, 2]].tolist() == [[0, 0], [1, 1], [0, 0], [1, 1]]
    assert condition.loss_weights(z, flags)[:, 1].tolist() == [1, 1, 1, 1]


def test_masks_show_whole_cells_at_every_rate_and_mask_their_loss():
    masks = CellMasks([[0], [1, 2], [3]], dim=4, dropout=0.25)
    n = 100_000
    shown = masks.draw_shown(n, torch.Generator().manual_seed(0))
    assert torch.equal(shown[:, 1], shown[:, 2])  # a cell's coordinates together
    bound = 4 * math.sqrt(0.25 / n)
    none = ~shown.any(1)
    # no cell shown: the dropped rows, plus rows whose rate showed none of 3 cells (E[(1-r)^3] = 1/4)
    assert abs(none.float().mean().item() - (0.25 + 0.75 / 4)) < bound
    # a cell is shown with probability E[r] = 1/2 on the other rows, independently of the others
    assert abs(shown[:, 0].float().mean().item() - 0.75 / 2) < bound
    both = (shown[:, 0] & shown[:, 3]).float().mean().item()
    assert abs(both - 0.75 / 3) < bound  # E[r^2] = 1/3: cells share the row's rate
    z = torch.arange(8.0).reshape(2, 4)
    flags = torch.tensor([[True, False, False, True], [False, True, True, False]])
    assert masks.inputs(z, flags).tolist() == [[0, 0, 0, 3, 1, 0, 0, 1], [0, 5, 6, 0, 0, 1, 1, 0]]
    assert masks.loss_weights(z, flags).tolist() == [[0, 1, 1, 0], [1, 0, 0, 1]]


def test_cell_groups_split_a_numeric_cell_from_its_missing_indicator():
    frame = kinds_table(200)
    frame.loc[::5, "value"] = np.nan
    model = sd.fit(frame, config={"train": {"steps": 1, "inpainting": "learnt"}}, progress=False,
                   num_samples=0, likelihood_rows=0)
    groups = model.encoder.cell_groups()
    where = model.encoder.coordinates()  # kind: one-hot block; value: number + present/missing block
    kind, value = model.columns.index("kind"), model.columns.index("value")
    expected = [sorted(where[kind]), [where[value][0]], sorted(where[value][1:])]
    assert sorted(map(sorted, groups)) == sorted(expected)
    assert isinstance(model.condition, CellMasks) and model.net.condition_size == 2 * model.latent_dim


@pytest.mark.parametrize("inpainting", ["repaint", "learnt"])
def test_both_training_paths_learn_the_same_conditional_model(inpainting):
    """The fast engine and autograd apply the same loss mask: equal loss curves."""
    theta, c = gaussian_pairs(1280)
    condition = {"data": {"condition": ["c1"]}} if inpainting == "repaint" else {}
    cfg = config.override(config.preset("default"), {
        **condition, "train": {"epochs": 3, "batch_size": 64, "inpainting": inpainting}})
    columns = ["x1", "c1"]
    rows = torch.as_tensor(np.hstack([theta, c]))
    histories = {}
    for path in (True, False):
        parts = build.build_parts(config.override(cfg, {"train": {"fast": path}}), columns, rows=rows)
        z = parts.encoder.forward(rows).float()
        trainer = build.trainer(config.override(cfg, {"train": {"fast": path}}), parts.net,
                                parts.schedule, z, z[:100], parts.condition)
        histories[path] = trainer.run(progress=False)
    for a, b in zip(histories[True], histories[False]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4, nan_ok=True)


# -- tables: categorical and numeric conditions, in-painting, filling gaps ----------------------

def kinds_table(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """A label a/b and a value that depends on it: N(-2, 0.5^2) for a, N(2, 0.5^2) for b."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(["a", "b"], n, p=[0.7, 0.3])
    return pd.DataFrame({"kind": kind, "value": np.where(kind == "a", -2.0, 2.0) + 0.5 * rng.normal(size=n)})


def test_a_dataframe_of_conditions_beside_the_data_keeps_its_names_and_labels():
    """``sd.fit(values, condition=frame)`` read the conditions as floats: a label column ended
    in a ValueError traceback. Now the two sit side by side as one table (labels stay labels),
    the model samples DataFrames, and a lone number conditions a one-column condition."""
    table = kinds_table(600)
    model = sd.fit(table[["value"]], condition=table[["kind"]], steps=800, progress=False, num_samples=0)
    assert model.columns == ["value", "kind"] and model.condition_columns == ["kind"]
    rows = model.sample(400, given={"kind": "b"}, seed=0)
    assert isinstance(rows, pd.DataFrame) and (rows["kind"] == "b").all()
    assert abs(rows["value"].mean() - 2.0) < 0.15 + 4 * 0.5 / math.sqrt(400)
    beside_array = sd.fit(table[["value"]].to_numpy(), condition=table["kind"], steps=50, progress=False,
                          num_samples=0)  # a Series beside an array: x1 and its name
    assert beside_array.columns == ["x1", "kind"]
    unnamed = sd.fit(table[["value"]], condition=pd.Series(table["kind"].to_numpy()), steps=50,
                     progress=False, num_samples=0)  # label 0, given as the number (a pandas error before)
    assert unnamed.columns == ["value", "0"] and (unnamed.sample(3, given={0: "b"}, seed=0)[0] == "b").all()
    numbers = sd.fit(table[["value"]].to_numpy(), condition=(table["kind"] == "b").to_numpy(float), steps=50,
                     progress=False, num_samples=0)
    assert numbers.sample(3, given=1.0, seed=0)[:, 1].tolist() == [1.0] * 3  # one value, one column
    with pytest.raises(UserError, match=r"^condition: column 'value' is in the data too"):
        sd.fit(table, condition=table[["value"]], progress=False)
    with pytest.raises(UserError, match=r"^condition needs one row per data row: data has 600 rows, "
                                        r"condition 10$"):
        sd.fit(table[["value"]], condition=table[["kind"]][:10], progress=False)


@pytest.fixture(scope="module")
def kinds_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kinds")
    kinds_table().to_csv(folder / "kinds.csv", index=False)
    assert cli(["train", str(folder / "run"), "--data", str(folder / "kinds.csv"), "--condition", "kind",
                "--steps", "2500", "-n", "500", "--likelihood-rows", "150", "--quiet"]) == 0
    return folder


def test_given_a_category_the_rows_have_it_and_its_values(kinds_run):
    out = kinds_run / "b.csv"
    assert cli(["sample", str(kinds_run / "run"), "-n", "2000", "-o", str(out), "--given", "kind=b",
                "--quiet"]) == 0
    rows = pd.read_csv(out)
    assert list(rows.columns) == ["kind", "value"] and (rows["kind"] == "b").all()
    assert abs(rows["value"].mean() - 2.0) < 0.1 + 4 * 0.5 / math.sqrt(2000)


def test_a_conditional_runs_student_samples_given_a_label_and_evaluate_checks_its_calibration(
        kinds_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(kinds_run / "run", run)
    assert cli(["distill", str(run), "--pairs", "8192", "--train-steps", "400", "--quiet"]) == 0
    assert "--sampler distilled` (with --given for rows given kind)" in capsys.readouterr().err
    out = tmp_path / "b.csv"
    assert cli(["sample", str(run), "-n", "2000", "-o", str(out), "--given", "kind=b", "--sampler",
                "distilled", "--quiet"]) == 0
    rows = pd.read_csv(out)  # value | kind = b is N(2, 0.25); the student errs by a tenth or so
    assert (rows["kind"] == "b").all() and abs(rows["value"].mean() - 2.0) < 0.2
    assert cli(["evaluate", str(run), "-n", "500", "--likelihood-rows", "0"]) == 0
    assert "; held-out coverage " in capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    coverage = metrics["distilled"]["calibration"]["coverage"]
    # The student's own draws (not the run's sampler's), within reach of nominal on 200 rows.
    assert coverage != metrics["calibration"]["coverage"] and 0.75 < coverage["0.9"] <= 1


def test_given_a_file_of_conditions_draws_n_rows_for_each(kinds_run):
    """Each condition's rows carry its identifier (the file's other column) first, also in the
    second chunk of rows (from row 4,096), so the two conditions of kind a stay told apart."""
    conditions = kinds_run / "conditions.csv"
    pd.DataFrame({"kind": ["a", "b", "a"], "case": ["p", "q", "r"]}).to_csv(conditions, index=False)
    out = kinds_run / "each.parquet"
    assert cli(["sample", str(kinds_run / "run"), "-n", "1400", "-o", str(out), "--given", str(conditions),
                "--chunk-size", "4096", "--quiet"]) == 0
    rows = pd.read_parquet(out)
    assert list(rows.columns) == ["case", "kind", "value"]
    assert len(rows) == 4200 and rows["kind"].tolist() == ["a"] * 1400 + ["b"] * 1400 + ["a"] * 1400
    assert rows["case"].tolist() == ["p"] * 1400 + ["q"] * 1400 + ["r"] * 1400
    means = rows.groupby("case")["value"].mean()
    assert means["p"] < -1.8 and means["q"] > 1.8 and means["r"] < -1.8
    model = sd.load(kinds_run / "run")
    drawn = model.sample(3, given=pd.DataFrame({"case": [7, 8], "kind": ["b", "a"]}), seed=0)
    assert drawn[["case", "kind"]].values.tolist() == [[7, "b"]] * 3 + [[8, "a"]] * 3
    typo = r"^given: the model has no column 'knid' .*\(did you mean 'kind'\?\)$"
    with pytest.raises(UserError, match=typo):  # a typo, not an identifier
        model.sample(3, given=pd.DataFrame({"case": [7], "knid": ["b"]}))


@pytest.fixture(scope="module")
def tagged_model():
    """A joint model of ``kinds_table`` plus a label ``tag`` equal to ``kind`` nine times in ten:
    given tag = b, kind is b with probability 0.27 / 0.34 = 0.794 and value's mean 1.18."""
    table = kinds_table()
    flip = np.random.default_rng(1).random(len(table)) < 0.1
    table["tag"] = np.where(flip, np.where(table["kind"] == "a", "b", "a"), table["kind"])
    return sd.fit(table, steps=2500, progress=False, num_samples=0)


def test_impute_median_is_one_table_of_each_cells_middle_draw_and_commonest_label(tagged_model):
    """The best single guess of each gap: a number's median draw (one of the draws, with as
    many above it as below), a label's most frequent draw, the observed cells as they were."""
    rows = pd.DataFrame({"kind": [None, None, "b", "a", *[None] * 20], "value": [-2.0, 2.1, *[None] * 22],
                         "tag": ["a", "b", "b", *[None] * 21]})
    draws = tagged_model.impute(rows, draws=9, seed=0)
    point = tagged_model.impute(rows, draws=9, seed=0, median=True)
    assert list(point.columns) == ["kind", "value", "tag"] and len(point) == 24
    assert point["kind"].tolist()[:4] == ["a", "b", "b", "a"] and point["tag"].tolist()[:3] == ["a", "b", "b"]
    for i in (2, 3, 4):
        column = draws.loc[i, "value"].to_numpy()  # the row's nine draws
        assert point.loc[i, "value"] in column
        assert (column < point.loc[i, "value"]).sum() <= 4 and (column > point.loc[i, "value"]).sum() <= 4
    assert point.loc[2, "value"] > 1 and point.loc[3, "value"] < -1  # value given its kind
    disagreeing = 0
    for i in range(4, 24):  # rows with nothing observed: their draws disagree (two labels, no tie in 9)
        labels = draws.loc[i, "kind"].value_counts()
        assert point.loc[i, "kind"] == labels.index[0]
        disagreeing += len(labels) > 1
    assert disagreeing >= 10
    with pytest.raises(UserError, match="median sums up several draws"):
        tagged_model.impute(rows, median=True)


def test_impute_median_on_the_command_line_writes_one_table(kinds_run, capsys):
    gaps = kinds_run / "gaps.csv"
    pd.DataFrame({"kind": ["a", "b"], "value": [None, None]}).to_csv(gaps, index=False)
    out = kinds_run / "best.csv"
    assert cli(["impute", str(kinds_run / "run"), "--data", str(gaps), "-o", str(out), "--median",
                "--quiet"]) == 1
    assert "error: --median sums up several draws of each cell: give --draws" in capsys.readouterr().err
    assert cli(["impute", str(kinds_run / "run"), "--data", str(gaps), "-o", str(out), "--median",
                "--draws", "5", "--quiet"]) == 0
    assert "with the median of 5 draws" in capsys.readouterr().err
    best = pd.read_csv(out)
    assert list(best.columns) == ["kind", "value"] and best["value"].iloc[0] < -1 < 1 < best["value"].iloc[1]


def test_given_labels_are_met_by_reject_sampling(tagged_model):
    """Whole rows drawn and those with the label kept: the model's own conditional, where
    in-painting the label left kind nearer its marginal of 0.3."""
    rows = tagged_model.sample(2000, given={"tag": "b"}, seed=0)
    assert (rows["tag"] == "b").all()
    share = (rows["kind"] == "b").mean()
    assert abs(share - 0.794) < 0.05 + 4 * math.sqrt(0.794 * 0.206 / 2000), share
    assert abs(rows["value"].mean() - (0.794 * 2 - 0.206 * 2)) < 0.25
    again = tagged_model.sample(2000, given={"tag": "b"}, seed=0, chunk_size=4096)
    pd.testing.assert_frame_equal(rows, again)  # the same rows, however chunked
    two = tagged_model.sample(1000, given={"tag": ["a", "b"]}, seed=0)
    assert two["tag"].tolist() == ["a"] * 1000 + ["b"] * 1000
    assert (two["kind"][:1000] == "a").mean() > 0.9 and (two["kind"][1000:] == "b").mean() > 0.7


def test_many_label_conditions_share_one_stream_of_rows(tagged_model):
    """A file of 60 label conditions drew a block of 4,096 rows for each (100 conditions of 5 rows
    of penguins: 114 s against RePaint's 0.8); one stream now deals its rows to them all."""
    labels = ["a", "b"] * 30
    calls = []
    draw = tagged_model.sample_chunks

    def counted(*args, **kwargs):
        calls.append(args[0] if args else kwargs.get("n"))
        return draw(*args, **kwargs)

    with mock.patch.object(tagged_model, "sample_chunks", side_effect=counted):
        rows = tagged_model.sample(20, given={"tag": labels}, seed=0, num_steps=20)
    assert rows["tag"].tolist() == [label for label in labels for _ in range(20)]
    assert len(calls) <= 3, calls  # the call itself and one or two blocks of 4,096
    assert not rows["value"][:20].reset_index(drop=True).equals(rows["value"][40:60].reset_index(drop=True))
    given = tagged_model.given_rows({"tag": labels[:30]})  # 30 x 200 rows: condition 20 is split
    whole = dict(tagged_model.sample_chunks(200, given=given, seed=3, num_steps=20))
    shards = {}
    for share in (range(0, 4096), range(4096, 6000)):
        shards |= dict(tagged_model.sample_chunks(200, given=given, seed=3, rows=share, num_steps=20))
    assert sorted(whole) == sorted(shards) and all(torch.equal(whole[k], shards[k]) for k in whole)


def test_labels_the_model_rarely_draws_are_in_painted_with_a_warning(tagged_model):
    given, tag = tagged_model.given_rows({"tag": "b"}), tagged_model.columns.index("tag")
    with pytest.warns(UserWarning, match=r"given: the model drew tag=b in 2,[5-9]\d\d of 8,192 rows \(at "
                                         r"most sample.reject_tries = 1 per row asked for\); the other"):
        whole = dict(tagged_model.sample_chunks(4500, given=given, seed=3, reject_tries=1, num_steps=20))
    assert sum(len(x) for x in whole.values()) == 4500
    assert all((x[:, tag] == tagged_model.schema[tag].categories.index("b")).all() for x in whole.values())
    shards = {}
    with warnings.catch_warnings():  # split between two processes inside the in-painted rows
        warnings.simplefilter("ignore")
        for share in (range(0, 4096), range(4096, 4500)):
            shards |= dict(tagged_model.sample_chunks(4500, given=given, seed=3, rows=share, reject_tries=1,
                                                      num_steps=20))
    assert sorted(whole) == sorted(shards)  # and they write the same rows as one process
    assert all(torch.equal(whole[k], shards[k]) for k in whole)
    with warnings.catch_warnings():  # a number given beside the label: in-painted, as before
        warnings.simplefilter("error")
        rows = tagged_model.sample(200, given={"tag": "b", "value": 2.0}, seed=0)
    assert (rows["value"] == 2.0).all() and (rows["tag"] == "b").all()


@pytest.mark.slow
def test_a_label_beside_the_condition_is_met_by_reject_sampling_given_it():
    """A model conditioned on ``group``, with eight yes/no answers that each repeat a hidden
    coin four times in five: given group and q1 = yes, rows are the conditional model's own
    rows with q1 = yes (q2's share of yes that of rows drawn given group alone, then
    filtered), where in-painting q1 had left q2 nearer its marginal (0.62-0.63 against
    0.68). Slow (about 40 s): a smaller setting did not tell the two apart surely."""
    rng = np.random.default_rng(0)
    coin = rng.random(3000) < 0.5
    answers = {f"q{k}": np.where((rng.random(3000) < 0.8) == coin, "yes", "no") for k in range(1, 9)}
    table = pd.DataFrame({"group": rng.choice(["u", "v"], 3000)} | answers)
    model = sd.fit(table, condition=["group"], steps=2500, progress=False, num_samples=0)
    reference = model.sample(16_000, given={"group": "u"}, seed=1)
    reference = (reference["q2"][reference["q1"] == "yes"] == "yes")
    rows = model.sample(4000, given={"group": "u", "q1": "yes"}, seed=0)
    assert (rows["group"] == "u").all() and (rows["q1"] == "yes").all()
    share, p = (rows["q2"] == "yes").mean(), reference.mean()
    assert abs(share - p) < 4 * math.sqrt(p * (1 - p) * (1 / len(rows) + 1 / len(reference))), (share, p)


def test_the_warning_names_a_numeric_condition_beside_the_label():
    """The warning wrote every given cell as a label, and a number given as the network's
    condition beside the label raised an IndexError instead."""
    table = kinds_table()
    table["tag"] = np.where(table["value"] > 0, "hi", "lo")
    model = sd.fit(table, condition=["value"], steps=300, progress=False, num_samples=0)
    with pytest.warns(UserWarning, match=r"given: the model drew value=1\.5, tag=lo in \d+ of 4,096 rows"):
        rows = model.sample(1000, given={"value": 1.5, "tag": "lo"}, seed=0, reject_tries=1, num_steps=10)
    assert (rows["tag"] == "lo").all() and (rows["value"] == 1.5).all()


def test_given_a_numeric_cell_in_paints_the_category(kinds_run):
    """``value`` is not a condition column: it is in-painted, and the label follows it."""
    model = sd.load(kinds_run / "run")
    rows = model.sample(1000, given={"value": [2.1, -1.9]}, seed=0)
    assert (rows["value"][:1000] == 2.1).all() and (rows["value"][1000:] == -1.9).all()
    assert (rows["kind"][:1000] == "b").mean() > 0.97 and (rows["kind"][1000:] == "a").mean() > 0.97


def test_given_cells_beyond_the_training_range_are_drawn_with_a_warning(kinds_run, capsys):
    """The training rows' values run from about -3.5 to 3.2: a condition at 10 is a guess."""
    model = sd.load(kinds_run / "run")
    with warnings.catch_warnings():  # inside the range: no warning
        warnings.simplefilter("error")
        model.sample(5, given={"value": [-1.0, 3.0]}, seed=0)
        # The training rows themselves, the smallest and the largest among them: the range was
        # kept as the network saw the rows (float32), and the edges were called outside it.
        folder = RunFolder(kinds_run / "run")
        training = api.run_training_data(folder, *folder.read_config())
        model.sample(1, given=to_frame(training.train, training.schema), seed=0)
    with pytest.warns(UserWarning, match=r"given: value=10 lies outside the training rows' range "
                                         r"\(value runs from -\d\.\d+ to \d\.\d+ in the training rows\)"):
        rows = model.sample(5, given={"value": 10.0}, seed=0)
    assert (rows["value"] == 10.0).all()  # still drawn, as given
    with pytest.warns(UserWarning, match=r"given: 2 of 3 conditions .* \(the first: value=-9;"):
        model.sample(5, given={"value": [-9.0, 0.0, 12.0]}, seed=0)
    assert cli(["sample", str(kinds_run / "run"), "-n", "3", "-o", str(kinds_run / "far.csv"),
                "--given", "kind=a,value=10", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: given: value=10 lies outside") and err.count("warning") == 1


def test_an_infinite_given_or_observed_cell_is_refused_in_one_line(kinds_run, capsys):
    """Conditioned on inf, a row comes out NaN: it is refused where it is, not drawn as NaN."""
    model = sd.load(kinds_run / "run")
    with pytest.raises(UserError, match=r"^given: an infinite value in column 'value'$"):
        model.sample(2, given={"value": math.inf})
    with pytest.raises(UserError, match=r"^given: an infinite value at row 1 in column 'value'$"):
        model.sample(2, given=pd.DataFrame({"value": [0.0, -math.inf]}))
    with pytest.raises(UserError, match=r"^impute: an infinite value at row 1 in column 'value'$"):
        model.impute(pd.DataFrame({"kind": [None, None], "value": [0.0, math.inf]}))
    rows = kinds_run / "inf.csv"
    rows.write_text("kind,value\n,1.0\n,inf\n")
    assert cli(["impute", str(kinds_run / "run"), "--data", str(rows), "-o", str(kinds_run / "f.csv")]) == 1
    assert capsys.readouterr().err == "error: impute: an infinite value at line 3 in column 'value'\n"
    assert cli(["sample", str(kinds_run / "run"), "-n", "2", "-o", str(kinds_run / "g.csv"),
                "--given", str(rows)]) == 1
    assert capsys.readouterr().err == "error: given: an infinite value at line 3 in column 'value'\n"
    assert not (kinds_run / "f.csv").exists() and not (kinds_run / "g.csv").exists()


def test_impute_reads_columns_by_name_or_all_by_position_and_counts_in_words(kinds_run, capsys):
    """A file sharing one name with the model and not the other was read in order: its columns
    `kind, other` became `kind, value`, silently (or `other, kind` swapped), and then refused: a
    column the file lacks (new rows whose measurement is still to come) is filled in every row,
    unless it is named like one of the file's (a typo). Counts said "1 rows"."""
    one = kinds_run / "one.csv"
    one.write_text("kind,value\na,\n")
    assert cli(["impute", str(kinds_run / "run"), "--data", str(one), "-o", "-", "--quiet"]) == 0
    assert capsys.readouterr().err.strip() == "filled 1 missing cell in 1 row: wrote standard output"
    partly = kinds_run / "partly.csv"
    partly.write_text("other,kind\n1.5,a\n2.5,b\n")
    assert cli(["impute", str(kinds_run / "run"), "--data", str(partly), "-o", "-", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"warning: {partly} has no column 'value': filled in every row",
                                         "filled 2 missing cells in 2 rows: wrote standard output"]
    lines = captured.out.splitlines()
    assert lines[0] == "other,kind,value" and [line[:6] for line in lines[1:]] == ["1.5,a,", "2.5,b,"]
    assert all(np.isfinite(float(line.split(",")[2])) for line in lines[1:])
    model = sd.load(kinds_run / "run")
    with pytest.warns(UserWarning, match=r"^impute has no column 'value': filled in every row$"):
        filled = model.impute(pd.DataFrame({"kind": ["a", "b", None]}), draws=2)
    assert list(filled.columns) == ["draw", "kind", "value"] and filled.notna().all().all()
    typo = kinds_run / "typo.csv"
    typo.write_text("kind,Value\na,1.5\n")
    assert cli(["impute", str(kinds_run / "run"), "--data", str(typo), "-o", "-", "--quiet"]) == 1
    assert capsys.readouterr().err.strip().endswith(
        "typo.csv: no column 'value' (did you mean 'Value'?): name it as the model does, or it is taken "
        "to be absent and filled in every row")
    unnamed = kinds_run / "unnamed.csv"  # none of the names: in order, as a headerless file's
    unnamed.write_text("u,v\nb,\n")
    assert cli(["impute", str(kinds_run / "run"), "--data", str(unnamed), "-o", "-", "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("b,")


def test_a_label_or_a_column_spelt_otherwise_is_named_with_the_one_meant(kinds_run, capsys):
    run = str(kinds_run / "run")
    assert cli(["sample", run, "-n", "1", "-o", "-", "--given", "kind=A", "--quiet"]) == 1
    assert capsys.readouterr().err.strip().endswith("never saw (it knows a, b) (did you mean 'a'?)")
    assert cli(["sample", run, "-n", "1", "-o", "-", "--given", "knd=a", "--quiet"]) == 1
    assert capsys.readouterr().err.strip().endswith("(columns: kind, value) (did you mean 'kind'?)")
    assert cli(["sample", run, "-n", "1", "-o", "-", "--given", "mass=1", "--quiet"]) == 1
    assert capsys.readouterr().err.strip().endswith("(columns: kind, value)")  # nothing near it


@pytest.mark.parametrize("nothing", [None, np.nan])
def test_a_given_column_without_a_value_is_refused(kinds_run, nothing):
    """A missing value means "not given": the rows came back not conditioned on it."""
    model = sd.load(kinds_run / "run")
    with pytest.raises(UserError, match=r"given: column 'value' has no value \((None|nan) conditions"):
        model.sample(5, given={"kind": "a", "value": nothing})
    rows = model.sample(4, given={"value": [1.5, None]}, seed=0)  # in a list: that row has none
    assert rows["value"].iloc[0] == 1.5 and rows["value"].iloc[4:].notna().all()


def test_evaluate_checks_the_calibration_and_conditional_likelihood_of_a_conditional_run(kinds_run):
    metrics = json.loads((kinds_run / "run" / "metrics.json").read_text())
    result = metrics["calibration"]
    assert result["columns"] == ["value"] and result["rows"] == 150 and result["draws"] == 100
    assert abs(result["coverage"]["0.9"] - 0.9) < 0.1  # 150 rows: binomial sd 0.025, plus model error
    assert (kinds_run / "run" / "calibration.png").stat().st_size > 5000
    report = (kinds_run / "run" / "report.html").read_text()
    assert 'id="calibration"' in report
    # value | kind is N(+-2, 0.5^2): its entropy, 0.726 nats, is the held-out NLL of the truth
    # (150 rows: standard error 0.06), where the joint (a category) has no density.
    given = metrics["conditional_likelihood"]
    assert given["given"] == ["kind"] and given["rows"] == 150
    assert abs(given["nll_per_row"] - 0.5 * math.log(2 * math.pi * math.e * 0.25)) < 0.2
    assert "categorical" in metrics["likelihood"]["skipped"]
    assert 'id="conditional_likelihood">held-out NLL given kind: ' in report


@pytest.mark.parametrize("bad, message", [
    (["--given", "kind=c"], "label 'c', which the model never saw"),
    (["--given", "colour=red"], "the model has no column 'colour'"),
    (["--given", "kind"], "kind"),
    (["--given", "kind=a,kind=b"], "column 'kind' is given twice"),
    (["--given", "value=abc"], "given: column 'value' has a non-numeric value 'abc' at row 0, where"),
    (["--given", "kind=a,value=1,5"], "'1,5' at row 0 (its numbers are written as 1234.5)"),
    (["--given", "kind=a,value="], "column 'value' has no value (an empty or missing cell"),
    (["--given", "kind=NA"], "column 'kind' has no value"),
])
def test_bad_conditions_are_refused_in_one_line(kinds_run, capsys, bad, message):
    code = cli(["sample", str(kinds_run / "run"), "-n", "5", "-o", str(kinds_run / "x.csv"), *bad, "--quiet"])
    assert code == 1 and message in capsys.readouterr().err


def test_a_condition_must_name_a_column_and_leave_one():
    frame = kinds_table(100)
    with pytest.raises(UserError, match=r"data\.condition names column 'nope'"):
        sd.fit(frame, condition=["nope"], progress=False)
    with pytest.raises(UserError, match="inpainting = learnt conditions on any columns"):
        sd.fit(frame, condition=["kind"], config={"train": {"inpainting": "learnt"}}, progress=False)
    with pytest.raises(UserError, match="names every column"):
        sd.fit(frame, condition=["kind", "value"], progress=False)


def correlated(n: int, seed: int = 0) -> np.ndarray:
    """(x1, x2) standard normal with correlation 0.9: x2 | x1 ~ N(0.9 x1, 0.19)."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    return np.stack([x1, 0.9 * x1 + math.sqrt(0.19) * rng.normal(size=n)], 1)


@pytest.mark.parametrize("inpainting", ["repaint", pytest.param("learnt", marks=pytest.mark.slow)])
def test_impute_draws_missing_cells_from_their_conditional(inpainting):
    """Filled cells follow the closed-form conditional. Learnt in-painting's conditionals are also
    checked by quicker tests (labels given a value below, gaps given a date's weekday in
    test_tables), so its run of this one is slow."""
    model = sd.fit(correlated(4000), config={"train": {**QUICK["train"], "inpainting": inpainting}},
                   progress=False)
    rows = correlated(300, seed=1)
    gaps = rows.copy()
    gaps[:, 1] = np.nan
    gaps[:5, 0], gaps[:5, 1] = np.nan, rows[:5, 1]  # the other column missing in a few rows
    filled = model.impute(gaps, draws=10, seed=0).numpy()
    assert filled.shape == (10, 300, 2)
    assert np.array_equal(filled[:, 5:, 0], np.broadcast_to(rows[5:, 0], (10, 295)))  # kept
    residual = filled[:, 5:, 1] - 0.9 * rows[5:, 0]
    assert abs(residual.mean()) < 0.05 + 4 * math.sqrt(0.19 / residual.size)
    assert abs(residual.var() / 0.19 - 1) < 0.2
    complete = model.impute(rows, draws=3).numpy()
    assert np.array_equal(complete, np.broadcast_to(rows, (3, 300, 2)))  # nothing to fill
    if inpainting == "learnt":  # the network completes the rows: no RePaint repetitions
        assert torch.equal(model.impute(gaps[:50], resample=1), model.impute(gaps[:50], resample=3))


@pytest.mark.parametrize("inpainting", ["repaint", "learnt"])
def test_impute_keeps_the_file_format_and_never_writes_a_missing_label(tmp_path, inpainting):
    frame = kinds_table(800)
    frame.loc[::7, "kind"] = None  # the model learns that labels go missing
    model_dir = tmp_path / "run"
    frame.to_csv(tmp_path / "train.csv", index=False)
    assert cli(["train", str(model_dir), "--data", str(tmp_path / "train.csv"), "--steps", "1500",
                "-n", "0", "--inpainting", inpainting, "--quiet"]) == 0
    gaps = frame.head(40).copy()
    gaps.loc[:, "kind"] = None
    gaps.loc[::2, "value"] = 2.0
    gaps.loc[1::2, "value"] = -2.0
    gaps.to_parquet(tmp_path / "gaps.parquet")
    assert cli(["impute", str(model_dir), "--data", str(tmp_path / "gaps.parquet"), "-o",
                str(tmp_path / "filled.parquet"), "--draws", "3", "--quiet"]) == 0
    filled = pd.read_parquet(tmp_path / "filled.parquet")
    assert list(filled.columns) == ["draw", "kind", "value"] and len(filled) == 120
    assert filled["kind"].notna().all()
    labels = filled["kind"].to_numpy().reshape(3, 40)
    assert (labels[:, ::2] == "b").mean() > 0.8 and (labels[:, 1::2] == "a").mean() > 0.8  # prior: 0.3, 0.7


# -- calibration checks on exact posteriors ---------------------------------------------------

def conjugate(rows: int, draws: int, scale: float = 1.0, seed: int = 0):
    """theta ~ N(0, 1), x ~ N(theta, 1): theta | x ~ N(x / 2, 1 / 2); draws scaled by ``scale``."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(rows, 2))
    x = theta + rng.normal(size=(rows, 2))
    posterior = x[:, None, :] / 2 + scale * math.sqrt(0.5) * rng.normal(size=(rows, draws, 2))
    return posterior, theta


def test_exact_posterior_draws_are_calibrated_within_binomial_error():
    rows = 2000
    result = calibration.calibrate(*conjugate(rows, 200), ["a", "b"])
    for level in (0.5, 0.9):
        error = 4 * math.sqrt(level * (1 - level) / rows)
        assert abs(result["coverage"][str(level)] - level) < error + 0.01  # + quantile resolution
        assert abs(result["tarp"][str(level)] - level) < error + 0.01
    assert min(result["rank_p_values"]) > 1e-3


def test_overconfident_and_underconfident_draws_are_caught():
    narrow = calibration.calibrate(*conjugate(2000, 200, scale=0.6), ["a", "b"])
    wide = calibration.calibrate(*conjugate(2000, 200, scale=1.6), ["a", "b"])
    assert narrow["coverage"]["0.9"] < 0.8 and wide["coverage"]["0.5"] > 0.6
    assert narrow["tarp"]["0.9"] < 0.85 and max(narrow["rank_p_values"]) < 1e-6
    assert narrow["curve"]["central"][-1] < 0.85  # the curve under the diagonal


def test_missing_draws_are_left_out_of_the_ranks():
    draws, truth = conjugate(500, 100)
    draws[:, ::2, :] = np.nan  # half the draws missing: ranks rescaled to 0..100
    ranks = calibration.ranks(draws, truth)
    assert ranks.max() <= 100 and ranks.max() > 90
    assert calibration.central_coverage(draws, truth, [0.9]).min() > 0.8


def test_impute_and_score_write_the_files_cells_to_their_last_digit(kinds_run, capsys):
    """Both wrote every number through "%.9g": a user's observed cell 2.12345678901234 came back
    as 2.12345679, an identifier 1234567890.25 as 1.23456789e+09. Now the file's cells are
    written as they were read, and only the model's numbers (filled cells, log densities) are
    cut to nine significant digits."""
    rows = kinds_run / "precise.csv"
    rows.write_text("ref,kind,value\n1234567890.25,a,-2.12345678901234\n1234567890.5,b,\n"
                    "1234567890.75,b,2.00000000000001\n")
    assert cli(["impute", str(kinds_run / "run"), "--data", str(rows), "-o", "-", "--quiet"]) == 0
    filled = [line.split(",") for line in capsys.readouterr().out.splitlines()]
    assert [row[0] for row in filled] == ["ref", "1234567890.25", "1234567890.5", "1234567890.75"]
    assert filled[1][2] == "-2.12345678901234" and filled[3][2] == "2.00000000000001"
    assert len(filled[2][2].lstrip("-").replace(".", "").strip("0")) <= 9 and float(filled[2][2]) > 0
    scored = kinds_run / "scored.csv"
    complete = kinds_run / "complete.csv"
    complete.write_text("ref,kind,value\n1234567890.25,a,-2.12345678901234\n1234567890.75,b,2.00000000000001\n")
    assert cli(["score", str(kinds_run / "run"), "--data", str(complete), "-o", str(scored), "--conditional",
                "--quiet"]) == 0
    lines = [line.split(",") for line in scored.read_text().splitlines()]
    assert [row[:3] for row in lines[1:]] == [["1234567890.25", "a", "-2.12345678901234"],
                                              ["1234567890.75", "b", "2.00000000000001"]]
    assert all(len(row[3].lstrip("-").replace(".", "").strip("0")) <= 9 for row in lines[1:])
