"""Conditioning: simulator posteriors (sbi's benchmark), conditional table rows, filled gaps.

**Posteriors** (``--posteriors``), two tasks as sbibm defines them (Lueckmann et al. 2021):
``gaussian_linear`` (theta ~ N(0, 0.1 I) in 10-D, x = theta + N(0, 0.1 I); the posterior is
N(x / 2, 0.05 I)) and ``two_moons`` (theta ~ U(-1, 1)^2, x = (r cos a + 0.25, r sin a) +
(-|theta_1 + theta_2| / sqrt 2, (theta_2 - theta_1) / sqrt 2), a ~ U(-pi/2, pi/2),
r ~ N(0.1, 0.01^2)). The two_moons reference posterior is drawn exactly: the map theta -> the
shift is piecewise orthogonal (two branches, |det| = 1), so drawing the crescent point p from
its own distribution, solving for theta on a random branch and keeping draws inside the prior's
box gives the posterior (as sbibm does). Ten observations from theta drawn from the prior (seed
0; sbibm ships its own ten, which we do not have offline). A model is trained on 1,000 and on
10,000 simulations (``sd.fit(theta, condition=x)``, the default preset), draws 10,000 posterior
samples per observation in one batch, and is scored by sbibm's C2ST (an MLP with two hidden
layers of 10 x dim units, 5-fold accuracy on z-scored samples; 0.5 is perfect), its classifier
stopping early on a held-out tenth of each fold (after 50 epochs without improvement) instead
of running 10,000 epochs. Coverage: the
same model's central 50% / 90% intervals and TARP on 200 fresh (theta, x) pairs, 100 draws each.

**The distilled sampler** (``--students``): the same default model, retrained, and its
one-evaluation student (``sd.distill`` at its defaults: 65,536 teacher pairs, a fifth of them
from the joint and the rest given conditions drawn from the teacher's own joint), scored as above
on the same observations, references and coverage pairs.

**Posterior densities** (``--posterior-density``): on ``gaussian_linear``, whose posterior has a
closed form, the same models' ``log_prob(theta, given=x_o)`` at 300 exact posterior draws for
each of the ten observations: the mean of log p - log q estimates KL(p || q) to the true
posterior (standard error over the 3,000 rows), beside NPE on the same simulations, trained as
sbi trains it (``npe_fit``: sbi is not installed here; its defaults are copied). A flow trained
for our wall time without early stopping overfits the 1,000 simulations (KL 12.8 nats).

**In-painting** (``--resample``): a joint model (no condition columns) of a 4-D Gaussian
(theta ~ N(0, 0.1 I) in 2-D, x = theta + N(0, 0.1 I)), given x = (0.5, -0.3) as in-painted cells:
the posterior of theta is N(x / 2, 0.05 I); error of the draws' mean and variance for RePaint's
repetitions 1 (plain replacement), 3, 5 and 10, against the network evaluations they cost.

**Conditional rows** (``--tables``): on penguins and diabetes (the splits of
``benchmarks/tables.py``), a model trained with one condition column (a category: species, sex;
a number: body mass, BMI) draws one row given each test row's condition; C2ST (the package's
gradient-boosting C2ST, 5 folds) between these rows and the test rows, per condition value (a
number's terciles), beside the oracle: the training rows with that value against the same test
rows. The same model's unconditional samples are scored by the tables protocol (ratio).
``--routes``: ``condition`` is that model; ``learnt`` a model trained with learnt in-painting
(no condition column) asked for the same rows with ``given``.

**Filling gaps** (``--imputation``): on the whole of penguins and diabetes, 20% of the cells
removed completely at random (MCAR), or, for numbers, missing not at random (MNAR: a cell's chance
of removal rises linearly with its rank in its column, 0 to 40%, so large values go missing
more often; categories stay at 20% MCAR). Each method sees only the table with gaps. Ours: the
default preset trained on it (``ours``: RePaint; ``ours_learnt``: learnt in-painting), then
``impute`` with 19 draws; the error is that of the mean of the first 5 draws (and, a column of its
own, of all 19) (numbers: mean absolute error over the column's standard deviation; categories:
the share of wrong labels, the 5 draws' vote), and the coverage is that of the range of the 19
draws, which holds the truth with probability 18/20 = 0.90 for calibrated draws (whatever their
distribution). Against scikit-learn's ``IterativeImputer`` (its defaults) and ``KNNImputer``
(5 neighbours, columns scaled by their spread), categories as codes rounded to the nearest
label; ``IterativeImputer(sample_posterior=True)`` run 19 times with different seeds ("mice":
multiple imputation from its Bayesian ridge regressions' predictive draws, the calibrated form of
the same linear model, scored on its draws like ours); and ForestDiffusion's ``impute`` (its
README's imputation setting: ``vp`` diffusion, n_t = 50, duplicate_K = 100, k = 5 draws, the fast
imputation without RePaint).

    .venv/bin/python benchmarks/conditional.py --posteriors
    .venv/bin/python benchmarks/conditional.py --guidance            # guidance and dropout sweep
    .venv/bin/python benchmarks/conditional.py --students            # the distilled sampler's posteriors
    .venv/bin/python benchmarks/conditional.py --posterior-density [--preset density]  # against NPE
    .venv/bin/python benchmarks/conditional.py --resample          # RePaint's repetitions
    .venv/bin/python benchmarks/conditional.py --tables
    .venv/bin/python benchmarks/conditional.py --imputation [--no-peer]

Results accumulate in benchmarks/results/conditional.json and go to BENCHMARKS.md between this
script's markers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import write_section

import simple_diffusion as sd
from simple_diffusion.config import ModelConfig
from simple_diffusion.data.columns import detect, to_frame, to_values
from simple_diffusion.evaluation import calibration, metrics, tabular

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "conditional.json"
OBSERVATIONS, POSTERIOR_SAMPLES = 10, 10_000
NPE = {("two_moons", 1000): 0.725, ("two_moons", 10000): 0.606,
       ("gaussian_linear", 1000): 0.694, ("gaussian_linear", 10000): 0.552}
"""sbibm's published C2ST of NPE (Lueckmann et al. 2021, Fig. 2), by task and simulations."""


# -- the tasks -------------------------------------------------------------------------------
def prior(task: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if task == "gaussian_linear":
        return rng.normal(0.0, np.sqrt(0.1), (n, 10))
    return rng.uniform(-1.0, 1.0, (n, 2))


def _crescent(n: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.uniform(-np.pi / 2, np.pi / 2, n)
    r = rng.normal(0.1, 0.01, n)
    return np.stack([r * np.cos(a) + 0.25, r * np.sin(a)], 1)


def simulate(task: str, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if task == "gaussian_linear":
        return theta + rng.normal(0.0, np.sqrt(0.1), theta.shape)
    shift = np.stack([-np.abs(theta[:, 0] + theta[:, 1]) / np.sqrt(2),
                      (theta[:, 1] - theta[:, 0]) / np.sqrt(2)], 1)
    return _crescent(len(theta), rng) + shift


def reference_posterior(task: str, x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Exact posterior draws given one observation ``x``."""
    if task == "gaussian_linear":
        return x / 2 + rng.normal(0.0, np.sqrt(0.05), (n, 10))
    kept: list[np.ndarray] = []
    while sum(len(k) for k in kept) < n:
        u = x - _crescent(4 * n, rng)  # = (-|t1 + t2| / sqrt 2, (t2 - t1) / sqrt 2)
        total = -np.sqrt(2) * u[:, 0] * rng.choice([-1.0, 1.0], len(u))
        difference = np.sqrt(2) * u[:, 1]
        theta = np.stack([(total - difference) / 2, (total + difference) / 2], 1)
        inside = (u[:, 0] <= 0) & (np.abs(theta) <= 1).all(1)
        kept.append(theta[inside])
    return np.concatenate(kept)[:n]


STOP_AFTER = 50
"""Epochs without improvement of the classifier's held-out accuracy before it stops."""


def sbibm_c2st(a: np.ndarray, b: np.ndarray, seed: int = 1) -> float:
    """sbibm's C2ST: z-scored by ``a``, an MLP of two layers of 10 x dim, 5-fold accuracy; the
    classifier stops early on 10% of its training fold (sbibm's runs to 10,000 epochs, which
    took over 15 CPU-minutes per fold on the 10-D task here)."""
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neural_network import MLPClassifier

    mean, std = a.mean(0), a.std(0)
    features = np.concatenate([(a - mean) / std, (b - mean) / std])
    labels = np.concatenate([np.zeros(len(a)), np.ones(len(b))])
    width = 10 * a.shape[1]
    classifier = MLPClassifier(activation="relu", hidden_layer_sizes=(width, width), max_iter=1000,
                               solver="adam", random_state=seed, early_stopping=True,
                               n_iter_no_change=STOP_AFTER)
    folds = KFold(n_splits=5, shuffle=True, random_state=seed)
    scores = cross_val_score(classifier, features, labels, cv=folds, scoring="accuracy", n_jobs=2)
    return float(scores.mean())


# -- one run ---------------------------------------------------------------------------------
def _posterior_model(task: str, simulations: int, seed: int, config: dict | None = None):
    """A model of ``task``'s posterior trained on ``simulations`` draws, and its training seconds."""
    rng = np.random.default_rng(seed)
    theta = prior(task, simulations, rng)
    x = simulate(task, theta, rng)
    start = time.perf_counter()
    model = sd.fit(theta, condition=x, config=config or {}, progress=False, seed=seed)
    return model, time.perf_counter() - start


def _posterior_scores(model, task: str, seed: int, **sampling) -> dict:
    """C2ST against the reference posteriors of the ten observations, and the coverage on 200
    fresh (theta, x) pairs, of ``model``'s draws with the ``sampling`` settings (the same
    observations, references and pairs for every call with one seed)."""
    d = model.dim // 2
    observed_rng = np.random.default_rng(10_000 + seed)
    truths = prior(task, OBSERVATIONS, observed_rng)
    observations = simulate(task, truths, observed_rng)
    start = time.perf_counter()
    draws = model.sample(POSTERIOR_SAMPLES, given=observations, seed=seed, **sampling).numpy()
    sample_seconds = time.perf_counter() - start
    draws = draws[:, :d].reshape(OBSERVATIONS, POSTERIOR_SAMPLES, d)
    scores = [sbibm_c2st(reference_posterior(task, obs, POSTERIOR_SAMPLES, observed_rng), draws[i])
              for i, obs in enumerate(observations)]
    # Calibration on fresh pairs from the prior predictive.
    check_rng = np.random.default_rng(20_000 + seed)
    check_theta = prior(task, 200, check_rng)
    check_x = simulate(task, check_theta, check_rng)
    check = model.sample(100, given=check_x, seed=seed + 1, **sampling).numpy()
    check = check[:, :d].reshape(200, 100, d)
    calibrated = calibration.calibrate(check, check_theta, [f"theta{i + 1}" for i in range(d)])
    return {"c2st": float(np.mean(scores)), "c2st_each": scores,
            "coverage": calibrated["coverage"], "tarp": calibrated["tarp"],
            "rank_p_min": min(calibrated["rank_p_values"]), "sample_seconds": sample_seconds}


def posterior_run(task: str, simulations: int, seed: int = 0, config: dict | None = None,
                  guidance: float | None = None) -> dict:
    model, train_seconds = _posterior_model(task, simulations, seed, config)
    return {"task": task, "simulations": simulations, "seed": seed, "config": config or {},
            "guidance": model.sampling_settings(guidance=guidance).guidance,
            **_posterior_scores(model, task, seed, guidance=guidance), "train_seconds": train_seconds}


def student_run(task: str, simulations: int, num_steps: int = 1, seed: int = 0) -> dict:
    """The default model of ``posterior_run`` and its ``num_steps`` student (``sd.distill``'s
    defaults), scored alike: how much of the posterior's fit the few-step sampler keeps."""
    model, train_seconds = _posterior_model(task, simulations, seed)
    teacher = _posterior_scores(model, task, seed)
    start = time.perf_counter()
    sd.distill(model, num_steps=num_steps, progress=False, seed=seed)
    distill_seconds = time.perf_counter() - start
    return {"task": task, "simulations": simulations, "num_steps": num_steps, "seed": seed,
            "train_seconds": train_seconds, "distill_seconds": distill_seconds, "teacher": teacher,
            "student": _posterior_scores(model, task, seed, sampler="distilled")}


def posterior_density_run(task: str, simulations: int, seed: int = 0, rows: int = 300,
                          preset: str = "default") -> dict:
    """KL(p || q) from the true posterior to ours (trained with ``preset``) and to a conditional
    NSF (NPE), over ``rows`` exact posterior draws for each observation (``task`` with a
    closed-form posterior)."""
    rng = np.random.default_rng(seed)
    theta = prior(task, simulations, rng)
    x = simulate(task, theta, rng)
    start = time.perf_counter()
    model = sd.fit(theta, condition=x, progress=False, seed=seed, preset=preset)
    train_seconds = time.perf_counter() - start
    observed_rng = np.random.default_rng(10_000 + seed)
    observations = simulate(task, prior(task, OBSERVATIONS, observed_rng), observed_rng)
    draws = np.concatenate([reference_posterior(task, obs, rows, observed_rng) for obs in observations])
    given = np.repeat(observations, rows, axis=0)
    truth = -0.5 * ((draws - given / 2) ** 2 / 0.05 + np.log(2 * np.pi * 0.05)).sum(1)  # N(x / 2, 0.05 I)
    start = time.perf_counter()
    ours = model.log_prob(draws, given=given).numpy()
    log_prob_seconds = time.perf_counter() - start
    start = time.perf_counter()
    flow, epochs = npe_fit(theta, x, seed)
    npe_seconds = time.perf_counter() - start
    result = {"task": task, "simulations": simulations, "seed": seed, "preset": preset, "rows": len(draws),
              "train_seconds": train_seconds, "log_prob_seconds": log_prob_seconds,
              "npe_seconds": npe_seconds, "npe_epochs": epochs}
    flow = flow(draws, given)
    for name, log_q in (("ours", ours), ("npe", flow)):
        difference = truth - log_q
        result[name] = {"kl": float(difference.mean()),
                        "kl_se": float(difference.std(ddof=1) / np.sqrt(len(difference))),
                        "kl_each": [float(d.mean()) for d in difference.reshape(OBSERVATIONS, rows)]}
    return result


def npe_fit(theta: np.ndarray, x: np.ndarray, seed: int = 0):
    """NPE as sbi trains it (``NPE(density_estimator="nsf").train()``'s defaults): a neural spline
    flow of theta given x (zuko's NSF with sbi's 5 transforms, 10 bins, 50 hidden units), both
    z-scored, Adam at 5e-4 on batches of 200 with gradients clipped at norm 5, stopped after
    20 epochs without a better loss on a held-out tenth (keeping the best weights). Returns a
    function giving log q(theta | x) in theta's units, and the epochs it trained."""
    import copy

    import torch
    import zuko

    torch.manual_seed(seed)
    (t_mean, t_std), (x_mean, x_std) = ((a.mean(0), a.std(0)) for a in (theta, x))
    t, c = (torch.tensor((a - m) / s, dtype=torch.float32)
            for a, m, s in ((theta, t_mean, t_std), (x, x_mean, x_std)))
    order = torch.randperm(len(t), generator=torch.Generator().manual_seed(seed))
    held, kept = order[: len(t) // 10], order[len(t) // 10:]
    flow = zuko.flows.NSF(features=t.shape[1], context=c.shape[1], transforms=5, bins=10,
                          hidden_features=(50, 50))
    optimizer = torch.optim.Adam(flow.parameters(), lr=5e-4)
    best, best_state, since, epochs = float("inf"), None, 0, 0
    while since < 20:
        for rows in kept[torch.randperm(len(kept))].split(200):
            loss = -flow(c[rows]).log_prob(t[rows]).mean()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(flow.parameters(), 5.0)
            optimizer.step()
        epochs += 1
        with torch.no_grad():
            held_loss = -flow(c[held]).log_prob(t[held]).mean().item()
        best, best_state, since = ((held_loss, copy.deepcopy(flow.state_dict()), 0) if held_loss < best
                                   else (best, best_state, since + 1))
    flow.load_state_dict(best_state)

    def log_q(values: np.ndarray, given: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            log_p = flow(torch.tensor((given - x_mean) / x_std, dtype=torch.float32)).log_prob(
                torch.tensor((values - t_mean) / t_std, dtype=torch.float32))
        return log_p.double().numpy() - np.log(t_std).sum()

    return log_q, epochs


# -- in-painting: RePaint's repetitions ------------------------------------------------------
def resample_runs(seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    theta = prior("gaussian_linear", 5000, rng)[:, :2]
    x = theta + rng.normal(0.0, np.sqrt(0.1), theta.shape)
    model = sd.fit(np.hstack([theta, x]), progress=False, seed=seed)
    observed = np.array([[np.nan, np.nan, 0.5, -0.3]])
    runs = []
    for resample in (1, 3, 5, 10):
        start = time.perf_counter()
        draws = model.sample(20_000, given=observed, seed=seed, resample=resample).numpy()[:, :2]
        runs.append({"resample": resample, "seconds": time.perf_counter() - start,
                     "mean_error": float(np.abs(draws.mean(0) - observed[0, 2:] / 2).max()),
                     "variance_ratio": (draws.var(0) / 0.05).tolist(),
                     "evaluations": model.config.sample.num_steps * resample})
    return runs


# -- conditional table rows ------------------------------------------------------------------
TABLE_CONDITIONS = {"penguins": ["species", "sex", "body_mass_g"], "diabetes": ["sex", "bmi"]}
TABLE_SPLITS = 3


def _table(name: str):
    import tables

    frame, label, data_config = tables.load(name)
    kinds = {k: data_config.get(k, []) for k in ("categorical", "integer", "numeric")}
    schema = detect(frame, kinds["categorical"], kinds["integer"], kinds["numeric"])
    return frame, label, data_config, schema, to_values(frame, schema)


def _groups(values: np.ndarray, column, reference: np.ndarray) -> dict[str, np.ndarray]:
    """Rows per condition value: a category's label, or a number's tercile of ``reference``."""
    if column.kind == "categorical":
        return {str(column.categories[int(code)]): values == code
                for code in np.unique(reference[~np.isnan(reference)])}
    edges = np.nanquantile(reference, [1 / 3, 2 / 3])
    bins = np.digitize(values, edges)
    return {f"tercile {k + 1}": bins == k for k in range(3)}


def table_condition_run(name: str, column: str, split: int, route: str = "condition") -> dict:
    """Rows given ``column`` from a model trained with it as its condition (``route`` =
    ``condition``) or from a model trained to in-paint any cells (``learnt``), scored per value;
    and the same model's unconditional rows."""
    import tables

    frame, label, data_config, schema, matrix = _table(name)
    train_index, test_index = tables.splits(frame, label)[split]
    train, test = matrix[train_index], matrix[test_index]
    names = [c.name for c in schema]
    j = names.index(column)
    train_frame = to_frame(train, schema)
    start = time.perf_counter()
    learnt = route == "learnt"
    model = sd.fit(train_frame, condition=None if learnt else [column], progress=False, num_samples=0,
                   config={"data": data_config,
                           "train": {"seed": split, "inpainting": "learnt" if learnt else "repaint"}})
    train_seconds = time.perf_counter() - start
    test = test[~np.isnan(test[:, j])]
    given = np.full_like(test, np.nan)
    given[:, j] = test[:, j]
    generated = model.sample(1, given=given, seed=split, frame=False).numpy()
    others = [k for k in range(len(names)) if k != j]
    encode = lambda rows: tabular.encode(rows[:, others], [schema[k] for k in others], train[:, others])[0]  # noqa: E731
    test_x, generated_x, train_x = encode(test), encode(generated), encode(train)
    groups_test = _groups(test[:, j], schema[j], train[:, j])
    groups_train = _groups(train[:, j], schema[j], train[:, j])
    per_value = {}
    for value, rows in groups_test.items():
        if rows.sum() < 10:
            continue
        rng = np.random.default_rng(split)
        oracle_rows = train_x[groups_train[value]]
        oracle_rows = oracle_rows[rng.permutation(len(oracle_rows))[: rows.sum()]]
        per_value[value] = {"rows": int(rows.sum()),
                            "c2st": metrics.c2st(generated_x[rows], test_x[rows], seed=split),
                            "c2st_oracle": metrics.c2st(oracle_rows, test_x[rows], seed=split)}
    unconditional = [to_values(model.sample(len(train), seed=g), schema) for g in range(5)]
    joint = tables.score(unconditional, train, matrix[test_index], schema)
    return {"table": name, "condition": column, "split": split, "route": route, "per_value": per_value,
            "c2st": float(np.mean([v["c2st"] for v in per_value.values()])),
            "c2st_oracle": float(np.mean([v["c2st_oracle"] for v in per_value.values()])),
            "ratio": joint["ratio"], "train_seconds": train_seconds}


# -- filling gaps ----------------------------------------------------------------------------
IMPUTATION_DRAWS, MEAN_OF = 19, 5


def remove_cells(matrix: np.ndarray, schema, mechanism: str, seed: int = 0) -> np.ndarray:
    """The table with 20% of its present cells removed (MCAR), or numbers by rank (MNAR)."""
    rng = np.random.default_rng(seed)
    gaps = matrix.copy()
    for j, column in enumerate(schema):
        values = matrix[:, j]
        chance = np.full(len(values), 0.2)
        if mechanism == "mnar" and column.kind != "categorical":
            ranks = np.argsort(np.argsort(np.where(np.isnan(values), -np.inf, values)))
            chance = 0.4 * ranks / (len(values) - 1)
        gaps[(rng.random(len(values)) < chance) & ~np.isnan(values), j] = np.nan
    return gaps


def _sklearn_imputer(kind: str, gaps: np.ndarray, schema) -> np.ndarray:
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer, KNNImputer

    scale = np.nanstd(gaps, axis=0)
    scale[scale == 0] = 1
    if kind == "iterative":
        imputers = [IterativeImputer(random_state=0)]
    elif kind == "mice":  # its posterior draws, one chain per draw: multiple imputation
        imputers = [IterativeImputer(sample_posterior=True, random_state=k) for k in range(IMPUTATION_DRAWS)]
    else:
        imputers = [KNNImputer(n_neighbors=5)]
    filled = np.stack([imputer.fit_transform(gaps / scale) * scale for imputer in imputers])
    for j, column in enumerate(schema):
        if column.kind == "categorical":
            filled[..., j] = np.clip(np.rint(filled[..., j]), 0, len(column.categories) - 1)
    return filled


def _forest_impute(gaps: np.ndarray, schema, seed: int) -> np.ndarray:
    from ForestDiffusion import ForestDiffusionModel

    categorical = [j for j, c in enumerate(schema) if c.kind == "categorical"]
    binary = [j for j in categorical if len(schema[j].categories) == 2]
    model = ForestDiffusionModel(gaps, n_t=50, duplicate_K=100, bin_indexes=binary,
                                 cat_indexes=[j for j in categorical if j not in binary],
                                 int_indexes=[j for j, c in enumerate(schema) if c.kind == "integer"],
                                 diffusion_type="vp", n_jobs=-1, seed=seed)
    np.random.seed(seed)  # its imputation draws from NumPy's global generator
    return np.asarray(model.impute(k=MEAN_OF), dtype=np.float64)


def _ours_impute(gaps: np.ndarray, schema, data_config: dict, seed: int,
                 inpainting: str = "repaint") -> np.ndarray:
    model = sd.fit(to_frame(gaps, schema), progress=False, num_samples=0,
                   config={"data": data_config, "train": {"seed": seed, "inpainting": inpainting}})
    filled = model.impute(to_frame(gaps, schema), draws=IMPUTATION_DRAWS, seed=seed)
    return np.stack([to_values(part.drop(columns="draw"), schema)
                     for _, part in filled.groupby("draw", sort=True)])


def imputation_scores(draws: np.ndarray, truth: np.ndarray, gaps: np.ndarray, schema) -> dict:
    """Error of the first 5 draws' mean (vote) on removed cells, and of all draws' mean (for a
    deterministic imputer the same); coverage of all draws' range."""
    removed = np.isnan(gaps) & ~np.isnan(truth)
    numeric = [j for j, c in enumerate(schema) if c.kind != "categorical"]
    categorical = [j for j, c in enumerate(schema) if c.kind == "categorical"]
    scale = np.nanstd(truth, axis=0)
    errors, errors_all, errors_median, covered, wrong = [], [], [], [], []
    first = draws[:MEAN_OF]
    median = np.quantile(draws, 0.5, axis=0, method="inverted_cdf")  # what `impute --median` writes
    for j in numeric:
        rows = removed[:, j]
        errors.append(np.abs(np.nanmean(first[:, rows, j], 0) - truth[rows, j]) / scale[j])
        errors_all.append(np.abs(np.nanmean(draws[:, rows, j], 0) - truth[rows, j]) / scale[j])
        errors_median.append(np.abs(median[rows, j] - truth[rows, j]) / scale[j])
        if len(draws) == IMPUTATION_DRAWS:
            low, high = np.nanmin(draws[:, rows, j], 0), np.nanmax(draws[:, rows, j], 0)
            covered.append((truth[rows, j] >= low) & (truth[rows, j] <= high))
    for j in categorical:
        rows = removed[:, j]
        votes = [np.bincount(first[:, i, j].astype(int), minlength=len(schema[j].categories)).argmax()
                 for i in np.flatnonzero(rows)]
        wrong.append(np.asarray(votes) != truth[rows, j])
    return {"mae": float(np.concatenate(errors).mean()),
            "mae_all_draws": float(np.concatenate(errors_all).mean()),
            "mae_median": float(np.concatenate(errors_median).mean()),
            "coverage": float(np.concatenate(covered).mean()) if covered else None,
            "error_rate": float(np.concatenate(wrong).mean()) if wrong else None}


def imputation_run(name: str, mechanism: str, method: str, seed: int = 0) -> dict:
    _, _, data_config, schema, matrix = _table(name)
    gaps = remove_cells(matrix, schema, mechanism, seed)
    start = time.perf_counter()
    if method in ("ours", "ours_learnt"):
        draws = _ours_impute(gaps, schema, data_config, seed,
                             "learnt" if method == "ours_learnt" else "repaint")
    elif method == "forest_diffusion":
        draws = _forest_impute(gaps, schema, seed)
    else:
        draws = _sklearn_imputer(method, gaps, schema)
    seconds = time.perf_counter() - start
    return {"table": name, "mechanism": mechanism, "method": method, "seed": seed,
            "removed": int((np.isnan(gaps) & ~np.isnan(matrix)).sum()), "seconds": seconds,
            **imputation_scores(draws, matrix, gaps, schema)}


KEYS = {"posteriors": ("task", "simulations", "seed", "config", "guidance"),
        "posterior_density": ("task", "simulations", "seed", "preset"),
        "resample": ("resample",),
        "tables": ("table", "condition", "split", "route"),
        "imputation": ("table", "mechanism", "method", "seed"),
        "students": ("task", "simulations", "num_steps", "seed")}


def key(section: str, run: dict) -> str:
    return json.dumps([run[k] for k in KEYS[section]])


def load_results() -> dict:
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for run in results.get("tables", []):
        run.setdefault("route", "condition")  # runs from before the learnt route
    for run in results.get("posterior_density", []):
        run.setdefault("preset", "default")
    return {section: results.get(section, []) for section in KEYS}


def done(results: dict, section: str, **fields) -> bool:
    return any(all(r[k] == v for k, v in fields.items()) for r in results[section])


def save(results: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    write_section("conditional", report(results))


def add(results: dict, section: str, run: dict) -> None:
    """Record ``run`` in ``results`` and in the file (re-read first: another run may have
    written to it meanwhile)."""
    results.update(load_results())
    results[section] = [r for r in results[section] if key(section, r) != key(section, run)] + [run]
    save(results)
    print(section, json.dumps({k: v for k, v in run.items() if k not in ("c2st_each", "per_value")}),
          flush=True)


def header(*columns: str) -> list[str]:
    """A Markdown table's first two lines."""
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def report(results: dict) -> str:
    return "\n\n".join(part for part in (posterior_report(results), student_report(results),
                                          density_report(results),
                                          resample_report(results), table_report(results),
                                          imputation_report(results)) if part)


def density_report(results: dict) -> str:
    runs = results["posterior_density"]
    if not runs:
        return ""
    lines = ["Posterior densities: KL(p || q) from the true posterior to the model's log p(theta | x), "
             "nats (mean over 10 observations x 300 exact posterior draws, +- standard error; worst "
             "observation); NPE: a conditional neural spline flow trained as sbi trains one (zuko's "
             "NSF, sbi's defaults, early stopping):", "",
             *header("task", "simulations", "our preset", "KL ours", "worst obs.", "KL NPE", "worst obs.",
                     "train s: ours / NPE", "ours log_prob s")]
    for r in sorted(runs, key=lambda r: (r["task"], r["simulations"], r["preset"] != "default")):
        cells = [f"{r[m]['kl']:.3f} +- {r[m]['kl_se']:.3f} | {max(r[m]['kl_each']):.3f}"
                 for m in ("ours", "npe")]
        lines.append(f"| {r['task']} | {r['simulations']:,} | {r['preset']} | {cells[0]} | {cells[1]} | "
                     f"{r['train_seconds']:.0f} / {r['npe_seconds']:.0f} ({r['npe_epochs']} epochs) | "
                     f"{r['log_prob_seconds']:.0f} |")
    return "\n".join(lines)


def resample_report(results: dict) -> str:
    if not results["resample"]:
        return ""
    lines = ["In-painting a Gaussian posterior (20,000 draws; truth: mean x / 2, variance 0.05):", "",
             *header("RePaint repetitions", "network evaluations per row", "largest mean error",
                     "variance / truth")]
    for r in results["resample"]:
        ratio = " / ".join(f"{v:.2f}" for v in r["variance_ratio"])
        lines.append(f"| {r['resample']} | {r['evaluations']} | {r['mean_error']:.3f} | {ratio} |")
    return "\n".join(lines)


def table_report(results: dict) -> str:
    runs = results["tables"]
    if not runs:
        return ""
    lines = ["Conditional rows (mean over splits; C2ST per condition value, then averaged). Route: "
             "`condition`, a model trained with `--condition COL`; `learnt`, a model trained with "
             "`--inpainting learnt` and sampled with `--given COL=...`:", "",
             *header("table", "condition", "route", "splits", "C2ST ours", "C2ST oracle (training rows)",
                     "worst value: ours / oracle", "unconditional ratio")]
    for name, column, route in sorted({(r["table"], r["condition"], r["route"]) for r in runs}):
        group = [r for r in runs if (r["table"], r["condition"], r["route"]) == (name, column, route)]
        values = group[0]["per_value"].keys()
        mean = {v: (np.mean([r["per_value"][v]["c2st"] for r in group if v in r["per_value"]]),
                    np.mean([r["per_value"][v]["c2st_oracle"] for r in group if v in r["per_value"]]))
                for v in values}
        worst = max(mean, key=lambda v: mean[v][0] - mean[v][1])
        c2st = np.mean([r["c2st"] for r in group])
        lines.append(f"| {name} | {column} | {route} | {len(group)} | {c2st:.3f} | "
                     f"{np.mean([r['c2st_oracle'] for r in group]):.3f} | {worst}: {mean[worst][0]:.3f} / "
                     f"{mean[worst][1]:.3f} | {np.mean([r['ratio'] for r in group]):.3f} |")
    return "\n".join(lines)


def imputation_report(results: dict) -> str:
    runs = results["imputation"]
    if not runs:
        return ""
    lines = ["Filling gaps (20% of cells removed; numbers: MAE / std of the 5-draw mean, coverage of "
             "the 19 draws' range, 0.90 when calibrated; categories: share of wrong labels):", "",
             *header("table", "gaps", "method", "MAE / std", "MAE / std, mean of all draws",
                     "MAE / std, median draw", "coverage (0.90)", "wrong labels", "seconds")]
    order = ["ours", "ours_learnt", "iterative", "mice", "knn", "forest_diffusion"]
    for r in sorted(runs, key=lambda r: (r["table"], r["mechanism"], order.index(r["method"]))):
        coverage = "" if r["coverage"] is None else f"{r['coverage']:.3f}"
        wrong = "" if r["error_rate"] is None else f"{r['error_rate']:.3f}"
        every, middle = (f"{r[k]:.3f}" if k in r else "-" for k in ("mae_all_draws", "mae_median"))
        lines.append(f"| {r['table']} | {r['mechanism'].upper()} | {r['method']} | {r['mae']:.3f} | "
                     f"{every} | {middle} | {coverage} | {wrong} | {r['seconds']:.0f} |")
    return "\n".join(lines)


def posterior_report(results: dict) -> str:
    if not results["posteriors"]:
        return ""
    rows = [r for r in results["posteriors"] if not r["config"] and r["guidance"] == 1.0]
    lines = header("task", "simulations", "C2ST ours (10 obs.)", "C2ST NPE (sbibm)", "coverage 50% / 90%",
                   "TARP 50% / 90%", "train s")
    for r in sorted(rows, key=lambda r: (r["task"], r["simulations"])):
        lines.append(
            f"| {r['task']} | {r['simulations']:,} | {r['c2st']:.3f} | "
            f"{NPE[(r['task'], r['simulations'])]:.3f} | {r['coverage']['0.5']:.3f} / "
            f"{r['coverage']['0.9']:.3f} | {r['tarp']['0.5']:.3f} / {r['tarp']['0.9']:.3f} | "
            f"{r['train_seconds']:.0f} |")
    sweep = [r for r in results["posteriors"] if r["config"] or r["guidance"] != 1.0]
    if sweep:
        lines += ["", "Guidance, condition dropout and the Gaussian part (the same tasks; rows with "
                  "share 0 were measured before the default had a part):", "",
                  *header("task", "simulations", "gaussian_part", "condition_dropout", "guidance", "C2ST",
                          "coverage 50% / 90%")]
        for r in sorted(rows + sweep, key=lambda r: (r["task"], r["simulations"], json.dumps(r["config"]),
                                                     r["guidance"])):
            dropout = r["config"].get("train", {}).get("condition_dropout", 0.2)
            share = r["config"].get("model", {}).get("gaussian_part", ModelConfig().gaussian_part)
            lines.append(f"| {r['task']} | {r['simulations']:,} | {share} | {dropout} | {r['guidance']} | "
                         f"{r['c2st']:.3f} | {r['coverage']['0.5']:.3f} / {r['coverage']['0.9']:.3f} |")
    return "\n".join(lines)


def student_report(results: dict) -> str:
    runs = results["students"]
    if not runs:
        return ""
    lines = ["The distilled sampler on the same posteriors (`--students`: the default model of the table "
             "above, retrained, and its student from `sd.distill` at its defaults; both scored on the same "
             "observations, references and 200 coverage pairs; sampling seconds for the 100,000 draws):", "",
             *header("task", "simulations", "sampler", "network evaluations", "C2ST (NPE)",
                     "coverage 50% / 90%", "TARP 50% / 90%", "sample s", "train + distill s")]
    for r in sorted(runs, key=lambda r: (r["task"], r["simulations"], r["num_steps"])):
        for name, scores, evaluations, seconds in (
                ("default", r["teacher"], 50, r["train_seconds"]),
                ("distilled", r["student"], r["num_steps"], r["train_seconds"] + r["distill_seconds"])):
            lines.append(
                f"| {r['task']} | {r['simulations']:,} | {name} | {evaluations} | {scores['c2st']:.3f} "
                f"({NPE[(r['task'], r['simulations'])]:.3f}) | {scores['coverage']['0.5']:.3f} / "
                f"{scores['coverage']['0.9']:.3f} | {scores['tarp']['0.5']:.3f} / "
                f"{scores['tarp']['0.9']:.3f} | {scores['sample_seconds']:.2f} | {seconds:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posteriors", action="store_true")
    parser.add_argument("--guidance", action="store_true", help="guidance and dropout sweep")
    parser.add_argument("--students", action="store_true", help="the distilled sampler's posteriors")
    parser.add_argument("--num-steps", default="1", help="student steps for --students")
    parser.add_argument("--tasks", default="two_moons,gaussian_linear")
    parser.add_argument("--simulations", default="1000,10000")
    parser.add_argument("--posterior-density", action="store_true",
                        help="log p(theta | x) against the closed-form posterior and NPE (gaussian_linear)")
    parser.add_argument("--preset", default="default", help="our preset for --posterior-density")
    parser.add_argument("--resample", action="store_true")
    parser.add_argument("--tables", action="store_true")
    parser.add_argument("--imputation", action="store_true")
    parser.add_argument("--routes", default="condition,learnt",
                        help="conditional table rows from: condition (train --condition), learnt "
                        "(train --inpainting learnt, then --given)")
    parser.add_argument("--no-peer", action="store_true", help="leave ForestDiffusion out")
    parser.add_argument("--methods", default="ours,ours_learnt,iterative,mice,knn,forest_diffusion",
                        help="imputation methods")
    parser.add_argument("--mechanisms", default="mcar,mnar")
    parser.add_argument("--imputation-tables", default="penguins,diabetes")
    args = parser.parse_args()
    results = load_results()
    tasks, budgets = args.tasks.split(","), [int(s) for s in args.simulations.split(",")]
    if args.posteriors:
        for task in tasks:
            for simulations in budgets:
                add(results, "posteriors", posterior_run(task, simulations))
    if args.students:
        for task in tasks:
            for simulations in budgets:
                for num_steps in [int(s) for s in args.num_steps.split(",")]:
                    if not done(results, "students", task=task, simulations=simulations, num_steps=num_steps):
                        add(results, "students", student_run(task, simulations, num_steps))
    if args.guidance:
        for task in tasks:
            for simulations in budgets:
                for guidance in (0.5, 1.5, 2.0):
                    add(results, "posteriors", posterior_run(task, simulations, guidance=guidance))
                for dropout in (0.1, 0.5):
                    add(results, "posteriors", posterior_run(
                        task, simulations, config={"train": {"condition_dropout": dropout}}))
    if args.posterior_density:
        for simulations in budgets:
            add(results, "posterior_density", posterior_density_run("gaussian_linear", simulations,
                                                                    preset=args.preset))
    if args.resample:
        for run in resample_runs():
            add(results, "resample", run)
    if args.tables:
        for route in args.routes.split(","):
            for name, columns in TABLE_CONDITIONS.items():
                for column in columns:
                    for split in range(TABLE_SPLITS):
                        if not done(results, "tables", table=name, condition=column, split=split,
                                    route=route):
                            add(results, "tables", table_condition_run(name, column, split, route))
    if args.imputation:
        methods = [m for m in args.methods.split(",") if not (args.no_peer and m == "forest_diffusion")]
        for name in args.imputation_tables.split(","):
            for mechanism in args.mechanisms.split(","):
                for method in methods:
                    if not done(results, "imputation", table=name, mechanism=mechanism, method=method):
                        add(results, "imputation", imputation_run(name, mechanism, method))


if __name__ == "__main__":
    main()
