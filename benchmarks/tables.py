"""Real tables: ours against ForestDiffusion on the same splits, by ForestDiffusion's protocol.

The protocol of Jolicoeur-Martineau et al. (AISTATS 2024, the repository's
``script_generation.py``): an 80/20 split (stratified by the label where there is one), 3 splits
x 5 generations of as many rows as the training split; rows min-max scaled with the training
split's range, categorical columns one-hot divided by 2; W1 with L1 cost (POT's ``emd2``) between
generated rows and the test split; the oracle is the training split itself, so
``ratio = W_test(model) / W_test(training split)``. A missing cell is one more category of its
column in this encoding (``evaluation/tabular.py``), so a model that never leaves a cell empty
pays for it. Also per run: the distance-to-closest-record share (generated rows nearer a training
row than a test row, for equal-sized sets: 0.5 when nothing is copied), the total variation
distance of every categorical column's frequencies to the test split's (the training split's own
is the oracle), missing rates, and training and sampling seconds.

ForestDiffusion runs its README's defaults (flow, n_t = 50, duplicate_K = 100, n_jobs = -1: both
cores; the label as ``label_y``; categorical, binary and integer columns declared), ours the
default preset (one thread: its network is small), and again with learnt in-painting
(``ours_learnt``: ``train.inpainting = learnt``). Both see only the training split; ours holds
out 10% of it as its validation rows (the default: below 10,000 rows the validation loss chooses
the epoch whose weights are kept), so the test split is seen by nothing but the metrics. Two
baselines that learn nothing calibrate the numbers: ``interpolation`` (rows moved towards a near
training row, SMOTE-like) and ``resampled`` (the training rows drawn again with replacement); a
third learns a classical density, ``mixture`` (a Gaussian mixture per combination of category
values).

    .venv/bin/pip install -c constraints.txt -e ".[benchmarks]"
    .venv/bin/python benchmarks/tables.py                       # all tables, both models (hours)
    .venv/bin/python benchmarks/tables.py --tables penguins --no-peer
    .venv/bin/python benchmarks/tables.py --ablation            # category encodings, step floors
    .venv/bin/python benchmarks/tables.py --large               # 10^6 x 20 mixed rows: time, memory
    .venv/bin/python benchmarks/tables.py --widths              # the network's width on small tables
    .venv/bin/python benchmarks/tables.py --skewed              # heavy-tailed columns: preprocessing
    .venv/bin/python benchmarks/tables.py --encodings           # category encodings on randhie
    .venv/bin/python benchmarks/tables.py --wide                # fertility: 51 years with gaps
    .venv/bin/python benchmarks/tables.py --memorising          # trained to the end: ratio vs copying
    .venv/bin/python benchmarks/tables.py --categories          # many categorical columns: encodings
    .venv/bin/python benchmarks/tables.py --patience            # the early stop: same weights, time

Results accumulate in benchmarks/results/tables.json (a run already there is not repeated) and go
to BENCHMARKS.md between this script's markers.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import write_section

import simple_diffusion as sd
from simple_diffusion.data.columns import detect, to_frame, to_values
from simple_diffusion.evaluation import metrics, tabular

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "tables.json"
SPLITS, GENERATIONS = 3, 5


def load(name: str) -> tuple[pd.DataFrame, str | None, dict]:
    """A table, its label column (None: no stratification) and our config overrides."""
    if name == "penguins":
        from palmerpenguins import load_penguins

        return load_penguins(), "species", {}
    if name == "diabetes":
        from sklearn.datasets import load_diabetes

        return load_diabetes(scaled=False, as_frame=True).frame, None, {"categorical": ["sex"]}
    if name == "digits":
        from sklearn.datasets import load_digits

        frame = load_digits(as_frame=True).frame  # 8 x 8 pixels of 0..16, stored as floats
        pixels = [c for c in frame.columns if c != "target"]
        return frame, "target", {"categorical": ["target"], "integer": pixels, "keep_constant": True}
    if name in ("iris", "wine", "breast_cancer"):  # ForestDiffusion's own small tables (150-569 rows)
        from sklearn import datasets

        frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
        return frame, "target", {"categorical": ["target"]}
    if name in ("anes96", "star98", "randhie"):  # statsmodels' survey, school and health-insurance tables
        import statsmodels.api as sm

        return getattr(sm.datasets, name).load_pandas().data, None, {}
    if name == "fertility":  # World Bank fertility rates, 219 countries: the 51 years 1960-2010
        import statsmodels.api as sm

        years = [str(year) for year in range(1960, 2011)]
        return sm.datasets.fertility.load_pandas().data[years], None, {}
    if name.startswith("survey_"):
        questions, answers = map(int, name.removeprefix("survey_").split("x"))
        return survey(questions, answers), None, {}
    raise SystemExit(f"unknown table {name}")


def survey(questions: int, answers: int, rows: int = 2000, classes: int = 4, seed: int = 0) -> pd.DataFrame:
    """A synthetic survey: each row's answers are drawn independently given one of ``classes``
    hidden respondent types, each type with its own answer frequencies per question (a latent
    class model; frequencies from a Dirichlet(0.5), so some answers are rare)."""
    rng = np.random.default_rng(seed)
    frequencies = rng.dirichlet(np.full(answers, 0.5), size=(classes, questions))
    kind = rng.integers(classes, size=rows)
    cumulative = frequencies[kind].cumsum(-1)
    codes = (rng.random((rows, questions, 1)) > cumulative).sum(-1).clip(max=answers - 1)
    labels = [f"a{k + 1}" for k in range(answers)]
    return pd.DataFrame({f"q{j + 1}": pd.Categorical.from_codes(codes[:, j], labels)
                         for j in range(questions)})


def splits(frame: pd.DataFrame, label: str | None) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import train_test_split

    index = np.arange(len(frame))
    return [train_test_split(index, test_size=0.2, random_state=seed,
                             stratify=frame[label] if label else None) for seed in range(SPLITS)]


def table_splits(name: str) -> tuple[list, dict, str | None, list[tuple[np.ndarray, np.ndarray]]]:
    """A table's schema, our config overrides, its label, and each split's training and test
    matrices."""
    frame, label, data_config = load(name)
    kinds = {k: data_config.get(k, []) for k in ("categorical", "integer", "numeric")}
    schema = detect(frame, kinds["categorical"], kinds["integer"], kinds["numeric"])
    matrix = to_values(frame, schema)
    return schema, data_config, label, [(matrix[tr], matrix[te]) for tr, te in splits(frame, label)]


def ours(train: pd.DataFrame, config: dict, generations: int, seed: int
         ) -> tuple[list[pd.DataFrame], float, float]:
    """The default preset with ``config``'s overrides, trained with ``seed``."""
    config = {**config, "train": {"seed": seed, **config.get("train", {})}}
    start = time.perf_counter()
    model = sd.fit(train, config=config, progress=False, num_samples=0)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    samples = [model.sample(len(train), seed=g) for g in range(generations)]
    return samples, train_seconds, (time.perf_counter() - start) / generations


def forest_diffusion(train: np.ndarray, schema, label: str | None, generations: int,
                     seed: int, duplicates: int = 100) -> tuple[list[np.ndarray], float, float]:
    """ForestDiffusion on the matrix of values and codes; its samples in the same form."""
    from ForestDiffusion import ForestDiffusionModel

    names = [c.name for c in schema]
    features = [j for j, name in enumerate(names) if name != label]
    kinds = {k: [features.index(j) for j in features if schema[j].kind == k]
             for k in ("categorical", "integer")}
    binary = [i for i in kinds["categorical"] if len(schema[features[i]].categories) == 2]
    categorical = [i for i in kinds["categorical"] if i not in binary]
    x = train[:, features]
    y = train[:, names.index(label)] if label else None
    start = time.perf_counter()
    model = ForestDiffusionModel(x, label_y=y, n_t=50, duplicate_K=duplicates, bin_indexes=binary,
                                 cat_indexes=categorical, int_indexes=kinds["integer"],
                                 diffusion_type="flow", n_jobs=-1, seed=seed)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    out = []
    for _ in range(generations):
        generated = np.asarray(model.generate(batch_size=len(train)), dtype=np.float64)
        rows = np.empty((len(generated), len(names)))
        rows[:, features] = generated[:, : len(features)]
        if label:
            rows[:, names.index(label)] = generated[:, -1]
        out.append(rows)
    return out, train_seconds, (time.perf_counter() - start) / generations


def interpolation(train: np.ndarray, schema, generations: int, seed: int
                  ) -> tuple[list[np.ndarray], float, float]:
    """A baseline that learns nothing (SMOTE-like): each training row moved a uniform fraction of
    the way towards one of its 5 nearest training rows, in its numeric and integer columns
    (rounded); categories and gaps stay the row's own. It shows what the ratio rewards: rows
    near the training rows, which the DCR share flags."""
    from sklearn.neighbors import NearestNeighbors

    start = time.perf_counter()
    encoded = tabular.encode(train, schema, train)[0]
    search = NearestNeighbors(n_neighbors=6).fit(encoded)
    neighbours = search.kneighbors(encoded, return_distance=False)[:, 1:]
    rng = np.random.default_rng(seed)
    numeric = [j for j, c in enumerate(schema) if c.kind != "categorical"]
    out = []
    for _ in range(generations):
        partner = train[neighbours[np.arange(len(train)), rng.integers(0, 5, len(train))]]
        step = rng.random((len(train), 1))
        rows = train.copy()
        moved = train[:, numeric] + step * (partner[:, numeric] - train[:, numeric])
        rows[:, numeric] = np.where(np.isnan(moved), train[:, numeric], moved)
        for j in numeric:
            if schema[j].kind == "integer":
                rows[:, j] = np.round(rows[:, j])
        out.append(rows)
    return out, 0.0, (time.perf_counter() - start) / generations


MIXTURE_COMPONENTS = 4
"""Most components of the ``mixture`` baseline's Gaussian mixtures (chosen by BIC)."""


def mixture(train: np.ndarray, schema, generations: int, seed: int) -> tuple[list[np.ndarray], float, float]:
    """A classical density model, with no diffusion and no network: for each combination of
    category values (a missing label one more), scikit-learn's full-covariance Gaussian mixture
    fitted to its rows' standardised numbers (rows without gaps; a combination with fewer than
    two such rows takes the whole table's mixture), of 1 to ``MIXTURE_COMPONENTS`` components by
    BIC, with at least as many rows as free parameters per component (BIC alone chose two or
    three components for wine's classes of 38-57 rows in 13 columns, whose covariances then
    hugged their rows: a DCR share of 0.69 on split 0 against 0.60 with one). Each generated
    row takes the categories and gaps of a training row drawn with replacement and fresh numbers
    from its combination's mixture, clipped to the training range, whole-number columns
    rounded. It copies no row's numbers: what fitting a mixture alone gives on these tables."""
    from sklearn.mixture import GaussianMixture

    start = time.perf_counter()
    numeric = [j for j, c in enumerate(schema) if c.kind != "categorical"]
    categorical = [j for j, c in enumerate(schema) if c.kind == "categorical"]
    mean, spread = np.nanmean(train[:, numeric], 0), np.nanstd(train[:, numeric], 0)
    spread[spread == 0] = 1.0
    numbers = (train[:, numeric] - mean) / spread
    complete = ~np.isnan(numbers).any(1)
    keys = np.nan_to_num(train[:, categorical], nan=-1.0)
    combinations, group = np.unique(keys, axis=0, return_inverse=True)
    group = group.reshape(-1)

    def fitted(rows: np.ndarray) -> GaussianMixture:
        d = rows.shape[1]
        most = max(1, min(MIXTURE_COMPONENTS, len(rows) // (1 + d + d * (d + 1) // 2)))
        fits = [GaussianMixture(k, covariance_type="full", reg_covar=1e-6, random_state=seed).fit(rows)
                for k in range(1, most + 1)]
        return min(fits, key=lambda fit: fit.bic(rows))

    whole = fitted(numbers[complete])
    mixtures = [fitted(numbers[complete & (group == g)]) if (complete & (group == g)).sum() >= 2 else whole
                for g in range(len(combinations))]
    train_seconds = time.perf_counter() - start
    rng = np.random.default_rng(seed)
    low, high = np.nanmin(train[:, numeric], 0), np.nanmax(train[:, numeric], 0)
    whole_numbers = [k for k, j in enumerate(numeric) if schema[j].kind == "integer"]
    out = []
    start = time.perf_counter()
    for _ in range(generations):
        drawn = rng.integers(0, len(train), len(train))
        rows = train[drawn].copy()
        values = np.empty((len(drawn), len(numeric)))
        for g in np.unique(group[drawn]):
            which = np.flatnonzero(group[drawn] == g)
            mixtures[g].random_state = int(rng.integers(2**31))  # its sample's draws
            values[which] = mixtures[g].sample(len(which))[0][rng.permutation(len(which))]
        values = np.clip(values * spread + mean, low, high)
        values[:, whole_numbers] = np.round(values[:, whole_numbers])
        rows[:, numeric] = np.where(np.isnan(rows[:, numeric]), np.nan, values)
        out.append(rows)
    return out, train_seconds, (time.perf_counter() - start) / generations


def resampled(train: np.ndarray, generations: int, seed: int) -> tuple[list[np.ndarray], float, float]:
    """The training rows drawn again with replacement: a generator that learnt the training
    split exactly and draws its rows independently. It copies every row (DCR share 1); its
    category frequencies show what independent draws of the training split's own give."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    out = [train[rng.integers(0, len(train), len(train))] for _ in range(generations)]
    return out, 0.0, (time.perf_counter() - start) / generations


def score(generated: list[np.ndarray], train: np.ndarray, test: np.ndarray, schema) -> dict:
    """The protocol's ratio and the privacy, category and missing-cell checks, over generations."""
    encode = lambda rows: tabular.encode(rows, schema, train)[0]  # noqa: E731
    train_x, test_x = encode(train), encode(test)
    oracle = tabular.wasserstein_l1(train_x, test_x)
    ratios, shares, tvd, missing, pairs = [], [], [], [], []
    for rows in generated:
        x = encode(rows)
        ratios.append(tabular.wasserstein_l1(x, test_x) / oracle)
        shares.append(metrics.memorisation(x, train_x, test_x)["share"])
        table = tabular.table_metrics(rows, test, train, schema)
        tvd.append({c["column"]: (c["tvd"], c["tvd_floor"]) for c in table["categories"]})
        missing.append({m["column"]: (m["rate"], m["train_rate"]) for m in table["missing"]})
        pairs.append((table.get("pair_trend_error"), table.get("pair_trend_error_floor")))
    columns = tvd[0].keys()
    return {
        "ratio": float(np.mean(ratios)), "ratios": ratios, "oracle_w1": oracle,
        "dcr_share": float(np.mean(shares)),
        "tvd": {c: float(np.mean([t[c][0] for t in tvd])) for c in columns},
        "tvd_oracle": {c: tvd[0][c][1] for c in columns},
        "missing": {c: float(np.mean([m[c][0] for m in missing])) for c in missing[0]},
        "missing_train": {c: missing[0][c][1] for c in missing[0]},
    } | ({"pair_trend_error": float(np.mean([p[0] for p in pairs])), "pair_trend_error_floor": pairs[0][1]}
         if pairs[0][0] is not None else {})


PEER_DUPLICATES = {"digits": 10}
"""ForestDiffusion's duplicate_K where its default 100 is out of reach here: digits' 64 columns
x 10 classes x 50 noise levels are 32,000 XGBoost fits, on 143,700 rows each at K = 100 (hours
per split on 2 cores); K = 10 makes it 14,370 rows, and digits runs one split."""
PEER_SPLITS = {"digits": 1}


def run_table(name: str, results: dict, peer: bool, generations: int) -> None:
    schema, data_config, label, parts = table_splits(name)
    for split, (train, test) in enumerate(parts):
        methods = ["ours", "ours_learnt", "interpolation", "mixture", "resampled"]
        methods += ["forest_diffusion"] if peer and split < PEER_SPLITS.get(name, SPLITS) else []
        for method in methods:
            key = f"{name}/{split}/{method}"
            if key in results:
                continue
            if method in ("ours", "ours_learnt"):
                inpainting = "learnt" if method == "ours_learnt" else "repaint"
                frames, train_s, sample_s = ours(to_frame(train, schema), {
                    "data": data_config, "train": {"inpainting": inpainting}}, generations, split)
                generated = [to_values(f, schema) for f in frames]
            elif method == "interpolation":
                generated, train_s, sample_s = interpolation(train, schema, generations, split)
            elif method == "mixture":
                generated, train_s, sample_s = mixture(train, schema, generations, split)
            elif method == "resampled":
                generated, train_s, sample_s = resampled(train, generations, split)
            else:
                generated, train_s, sample_s = forest_diffusion(train, schema, label, generations, split,
                                                                PEER_DUPLICATES.get(name, 100))
            results[key] = score(generated, train, test, schema) | {
                "train_seconds": train_s, "sample_seconds": sample_s, "rows": len(train)}
            print(f"{key}: ratio {results[key]['ratio']:.3f}, DCR share {results[key]['dcr_share']:.3f}, "
                  f"train {train_s:.1f} s", flush=True)
            save(results)


def variant_runs(results: dict, section: str, names: Sequence[str], variants: dict[str, dict],
                 generations: int, measure: Callable | None = None) -> None:
    """Ours on every split of each table with each variant's config overrides (over the table's
    own), scored and saved under ``section/table/split/variant``; ``measure(frames, train, test,
    schema)`` adds its own numbers. Runs already in ``results`` are kept."""
    for name in names:
        schema, data_config, _, parts = table_splits(name)
        for split, (train, test) in enumerate(parts):
            for variant, config in variants.items():
                key = f"{section}/{name}/{split}/{variant}"
                if key in results:
                    continue
                overrides = config | {"data": data_config | config.get("data", {})}
                frames, train_s, _ = ours(to_frame(train, schema), overrides, generations, split)
                results[key] = score([to_values(f, schema) for f in frames], train, test, schema) | {
                    "train_seconds": train_s, "rows": len(train)}
                if measure is not None:
                    results[key] |= measure(frames, train, test, schema)
                print(f"{key}: ratio {results[key]['ratio']:.3f}, DCR {results[key]['dcr_share']:.3f}, "
                      f"train {train_s:.1f} s", flush=True)
                save(results)


def ablation(results: dict, generations: int) -> None:
    """Category encodings (one-hot vs analog bits: digits' label has 10 classes, 10 one-hot
    columns or 4 bits), and on penguins the step floor, the sampler's steps and the network's
    width that the default takes from the data; ours only."""
    encodings = {"onehot": {}, "bits": {"data": {"categorical_encoding": "bits"}}}
    variant_runs(results, "ablation", ["penguins"], encodings | {
        "steps_5000": {"train": {"steps": 5000}}, "steps_20000": {"train": {"steps": 20_000}},
        "sampler_50_steps": {"sample": {"num_steps": 50}}, "width_128": {"model": {"hidden": [128] * 4}},
    }, generations)
    variant_runs(results, "ablation", ["digits"], encodings, generations)


WIDTHS = (64, 128, 256)
WIDTH_TABLES = ("iris", "wine", "penguins", "diabetes")


def widths(results: dict, generations: int) -> None:
    """The network's width on the small tables (120-353 training rows), the rest the default:
    what ``build.NARROW_BELOW`` was chosen from."""
    variant_runs(results, "widths", WIDTH_TABLES,
                 {str(width): {"model": {"hidden": [width] * 4}} for width in WIDTHS}, generations)


MEMORISING = {"to_the_end": {"train": {"keep_best": "no"}},
              "all_rows_to_the_end": {"train": {"keep_best": "no"}, "data": {"val_fraction": 0.01}}}
"""Ours without the early stop that guards against copying: the last weights rather than the
best epoch's on the validation rows, and also with (almost) every row trained on."""
MEMORISING_TABLES = ("iris", "wine", "penguins", "diabetes")


def memorising(results: dict, generations: int) -> None:
    """Fidelity against privacy: the ratio and DCR share of ours trained to the end."""
    variant_runs(results, "memorising", MEMORISING_TABLES, MEMORISING, generations)


PATIENCE_TABLES = ("iris", "wine", "penguins", "diabetes", "digits")


def patience(results: dict, generations: int) -> None:
    """The early stop (``train.patience``, the default 0.25) against training to the end (0):
    each split trained both ways in one process, the kept epoch and epochs trained of each,
    whether their ``generations`` samples are the same to the bit, and the training seconds."""
    for name in PATIENCE_TABLES:
        schema, data_config, _, parts = table_splits(name)
        for split, (train, _) in enumerate(parts):
            key = f"patience/{name}/{split}/stop"
            if key in results:
                continue
            fitted = {}
            for share in (0.25, 0.0):
                start = time.perf_counter()
                model = sd.fit(to_frame(train, schema), progress=False, num_samples=0,
                               config={"data": data_config, "train": {"seed": split, "patience": share}})
                fitted[share] = model, time.perf_counter() - start
            (stopped, stopped_s), (to_the_end, to_the_end_s) = fitted[0.25], fitted[0.0]
            same = all(stopped.sample(len(train), seed=g).equals(to_the_end.sample(len(train), seed=g))
                       for g in range(generations))
            results[key] = {
                "split": split, "kept": stopped.info["best_epoch"],
                "kept_to_the_end": to_the_end.info["best_epoch"],
                "epochs": stopped.info["epochs"], "epochs_planned": to_the_end.info["epochs"],
                "same_samples": same, "train_seconds": stopped_s, "train_seconds_to_the_end": to_the_end_s}
            print(f"{key}: {results[key]}", flush=True)
            save(results)


WIDE_WIDTHS = (128, 256)


def missing_cells(frames: list[pd.DataFrame], train: np.ndarray, test: np.ndarray, schema) -> dict:
    """The share of missing cells and of rows with none, in the generated rows (mean over
    generations) and in the training split."""
    generated = [to_values(f, schema) for f in frames]
    return {"missing_cells": float(np.mean([np.isnan(g).mean() for g in generated])),
            "missing_cells_train": float(np.isnan(train).mean()),
            "complete_rows": float(np.mean([(~np.isnan(g).any(1)).mean() for g in generated])),
            "complete_rows_train": float((~np.isnan(train).any(1)).mean())}


def wide(results: dict, generations: int) -> None:
    """A wide table of few rows with gaps (fertility: 51 columns, 153 encoded, 175 training
    rows) at the narrow and the wide network: what ``build.NARROW_MOST_COLUMNS`` was chosen
    from."""
    variant_runs(results, "wide", ["fertility"],
                 {str(width): {"model": {"hidden": [width] * 4}} for width in WIDE_WIDTHS}, generations,
                 measure=missing_cells)


SURVEYS = ("survey_5x8", "survey_10x8", "survey_20x8", "survey_40x8", "survey_40x3")
"""Synthetic surveys, ``survey_{questions}x{answers}``: 40 to 320 one-hot entries."""
CATEGORY_ENCODINGS = ("onehot", "bits")


def categories(results: dict, generations: int) -> None:
    """Tables of many categorical columns (the synthetic surveys), one-hot against analog bits:
    what ``tables.ONEHOT_MOST_ENTRIES`` was chosen from."""
    variant_runs(results, "categories", SURVEYS,
                 {e: {"data": {"categorical_encoding": e}} for e in CATEGORY_ENCODINGS}, generations)


SKEWED_TABLES = ("anes96", "star98", "breast_cancer")
PREPROCESSING = ("standardize", "auto")


def skewed_columns(generated: list[pd.DataFrame], train: pd.DataFrame, test: pd.DataFrame) -> dict:
    """On the columns skewed beyond ``encoders.SKEWED`` (with more than 10 values): the
    Kolmogorov-Smirnov statistic and W1 (in training standard deviations) of generated rows
    against the test split, the training split's own as the floor, means over columns and
    generations; and the share of generated cells outside their column's training range."""
    from scipy import stats

    from simple_diffusion.data.encoders import SKEWED

    columns = [c for c in train.columns if pd.api.types.is_numeric_dtype(train[c])
               and train[c].nunique() > 10 and abs(stats.skew(train[c].dropna())) > SKEWED]

    def distances(rows: pd.DataFrame) -> tuple[float, float]:
        return (float(np.mean([stats.ks_2samp(rows[c], test[c]).statistic for c in columns])),
                float(np.mean([stats.wasserstein_distance(rows[c], test[c]) / train[c].std()
                               for c in columns])))

    ks, w1 = zip(*(distances(rows) for rows in generated))
    outside = np.mean([((rows[c] < train[c].min()) | (rows[c] > train[c].max())).mean()
                       for rows in generated for c in columns])
    floor = distances(train)
    return {"skewed_columns": len(columns), "ks": float(np.mean(ks)), "ks_floor": floor[0],
            "w1_sd": float(np.mean(w1)), "w1_sd_floor": floor[1], "outside_range": float(outside)}


def skewed(results: dict, generations: int) -> None:
    """The default's preprocessing (``auto``: a Yeo-Johnson transform of skewed columns) against
    plain standardisation on tables with heavy-tailed columns (populations, counts of students,
    measurement errors); both keep samples within the training range."""
    variant_runs(results, "skewed", SKEWED_TABLES,
                 {p: {"data": {"preprocess": p}} for p in PREPROCESSING}, generations,
                 lambda frames, train, test, schema: skewed_columns(
                     frames, to_frame(train, schema), to_frame(test, schema)))


ENCODINGS = ("onehot", "auto", "bits")


def encodings(results: dict) -> None:
    """Category encodings on RAND's health-insurance table (20,190 rows; chronic disease coded as
    one of 31 values, a physical limitation as one of 12: point-mass blocks of 30 and 12 entries),
    one generation per split: the ratio, and C2ST of generated rows against the test split."""
    variant_runs(results, "encodings", ["randhie"],
                 {e: {"data": {"categorical_encoding": e}} for e in ENCODINGS}, 1,
                 lambda frames, train, test, schema: {
                     "c2st": metrics.c2st(to_values(frames[0], schema), test)})


def large(results: dict, rows: int = 1_000_000, seed: int = 0) -> None:
    """A 10^6 x 20 mixed table (15 correlated numbers with 5% gaps in two, 3 categories, 2
    integers): training seconds, peak memory, and the ratio against 20,000 held-out rows."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 5, rows)
    numbers = rng.normal(size=(rows, 15)) @ rng.normal(size=(15, 15)) * 0.3 + k[:, None]
    numbers[rng.random(rows) < 0.05, 3] = np.nan
    numbers[rng.random(rows) < 0.05, 7] = np.nan
    frame = pd.DataFrame(numbers, columns=[f"x{i}" for i in range(15)])
    frame["group"] = np.array(list("abcde"))[k]
    frame["colour"] = np.array(["red", "green", "blue"])[(k + rng.integers(0, 2, rows)) % 3]
    frame["flag"] = rng.random(rows) < 0.3 + 0.1 * k
    frame["count"] = rng.poisson(2 + k)
    frame["year"] = rng.integers(2000, 2020, rows)
    held_out = frame.iloc[-20_000:].reset_index(drop=True)
    start = time.perf_counter()
    model = sd.fit(frame.iloc[:-20_000], validation=held_out, progress=True, num_samples=0)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    generated = model.sample(20_000, seed=1)
    sample_seconds = time.perf_counter() - start
    schema = model.schema
    train = to_values(frame.iloc[:20_000], schema)
    result = score([to_values(generated, schema)], train, to_values(held_out, schema), schema)
    results["large"] = result | {
        "rows": rows - 20_000, "train_seconds": train_seconds, "sample_20000_seconds": sample_seconds,
        "peak_memory_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "steps": model.config.train.steps, "batch_size": model.config.train.batch_size,
    }
    print(f"large: {results['large']}", flush=True)
    save(results)


def save(results: dict) -> None:
    """Add ``results`` to the file, keeping entries another run of this script wrote meanwhile."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.update(saved | results)
    sd.io.write_text(RESULTS, json.dumps(results, indent=2) + "\n")


def worst_tvd_excess(runs: list[dict]) -> float | None:
    """The largest, over categorical columns, of the model's TVD minus the oracle's, each
    averaged over splits (a perfect model is above the oracle on about half the columns)."""
    columns = runs[0]["tvd"]
    return max((np.mean([r["tvd"][c] - r["tvd_oracle"][c] for r in runs]) for c in columns), default=None)


def grouped(results: dict, section: str) -> dict[tuple[str, str], list[dict]]:
    """The runs saved under ``section/table/split/variant``, by (table, variant)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for key, r in results.items():
        if key.startswith(f"{section}/"):
            _, name, _, variant = key.split("/")
            groups.setdefault((name, variant), []).append(r)
    return groups


def present(groups: dict[tuple[str, str], list[dict]], names: Sequence[str], variants: Iterable[str]
            ) -> Iterator[tuple[str, str, list[dict]]]:
    """(table, variant, runs) of ``grouped``'s groups that have runs, tables then variants in order."""
    variants = list(variants)
    for name in names:
        for variant in variants:
            if groups.get((name, variant)):
                yield name, variant, groups[name, variant]


def header(names: str, aligns: str) -> list[str]:
    """A Markdown table's two header lines: the column ``names`` (separated by " | ") and their
    alignment, one letter each in ``aligns`` (``l`` left, ``r`` right)."""
    return [f"| {names} |", "| " + " | ".join("---" if a == "l" else "---:" for a in aligns) + " |"]


def method_runs(results: dict, name: str, method: str) -> list[dict]:
    """The runs of ``method`` on table ``name``, one per split (saved as ``name/split/method``)."""
    return [r for k, r in results.items() if k.startswith(f"{name}/") and k.endswith(f"/{method}")]


def averages(runs: list[dict], *fields: str) -> dict[str, float]:
    """Each field's mean over ``runs``."""
    return {f: float(np.mean([r[f] for r in runs])) for f in fields}


def each_split(runs: list[dict]) -> str:
    """The mean ratio of ``runs`` and each one's: ``1.000 (0.990, 1.010)``."""
    return f"{averages(runs, 'ratio')['ratio']:.3f} (" + ", ".join(f"{r['ratio']:.3f}" for r in runs) + ")"


METHODS = ("ours", "ours_learnt", "forest_diffusion", "interpolation", "mixture", "resampled")
METHOD_NAMES = {"ours_learnt": "ours, learnt in-painting (`train.inpainting = learnt`)",
                "mixture": "Gaussian mixture per category combination",
                "resampled": "training rows resampled"}


def category_report(results: dict) -> list[str]:
    """Each categorical column's TVD to the test split, mean over splits and generations, beside
    the oracle's (the training split's own)."""
    short = ["ours", "ours, learnt", "ForestDiffusion", "interpolation", "mixture", "training rows resampled"]
    lines = header(" | ".join(["table", "column", "oracle", *short]), "ll" + "r" * (1 + len(METHODS)))
    for name in ("iris", "wine", "penguins", "diabetes", "digits"):
        runs = {m: method_runs(results, name, m) for m in METHODS}
        if not runs["ours"]:
            continue
        for column in runs["ours"][0]["tvd"]:
            oracle = np.mean([r["tvd_oracle"][column] for r in runs["ours"]])
            cells = [f"{np.mean([r['tvd'][column] for r in runs[m]]):.3f}" if runs[m] else "-"
                     for m in METHODS]
            lines.append(f"| {name} | {column} | {oracle:.3f} | " + " | ".join(cells) + " |")
    return lines


def report(results: dict) -> str:
    def mean(name: str, method: str, field: str):
        values = [r[field] for r in method_runs(results, name, method)]
        return (float(np.mean(values)), float(np.std(values)), len(values)) if values else None

    lines = header("table | model | ratio W_test / oracle (+- sd over splits) | its standard error "
                   "| DCR share | TVD - oracle TVD, worst column | missing rate vs training (points) "
                   "| train s | sample s | splits", "llrrrrrrrr")
    for name in ("iris", "wine", "penguins", "diabetes", "digits"):
        for method in METHODS:
            runs = method_runs(results, name, method)
            if not runs:
                continue
            ratio = mean(name, method, "ratio")
            generations = np.concatenate([r["ratios"] for r in runs])  # every split's generations
            error = generations.std(ddof=1) / np.sqrt(len(generations))
            share = mean(name, method, "dcr_share")
            excess = worst_tvd_excess(runs)
            gap = max((abs(r["missing"][c] - r["missing_train"][c]) * 100 for r in runs
                       for c in r["missing"]), default=None)
            lines.append(
                f"| {name} | {METHOD_NAMES.get(method, method.replace('_', ' '))} | "
                f"{ratio[0]:.3f} +- {ratio[1]:.3f} | {error:.3f} | "
                f"{share[0]:.3f} | {'-' if excess is None else f'{excess:+.3f}'} | "
                f"{'-' if gap is None else f'{gap:.1f}'} | {mean(name, method, 'train_seconds')[0]:.1f} | "
                f"{mean(name, method, 'sample_seconds')[0]:.2f} | {ratio[2]} |")
    lines += ["", "Total variation distance of each categorical column's frequencies to the test split's "
              "(mean over splits and generations; oracle: the training split's own; a missing cell counts "
              "as a category):", "", *category_report(results)]
    ablations = grouped(results, "ablation")
    if ablations:
        lines += ["", *header("table | variant | ratio | DCR share | worst TVD - oracle | train s | splits",
                              "llrrrrr")]
        for (name, variant), runs in sorted(ablations.items()):
            excess = worst_tvd_excess(runs) or 0.0
            m = averages(runs, "ratio", "dcr_share", "train_seconds")
            lines.append(f"| {name} | {variant} | {m['ratio']:.3f} | {m['dcr_share']:.3f} | {excess:+.3f} | "
                         f"{m['train_seconds']:.1f} | {len(runs)} |")
    by_width = grouped(results, "widths")
    if by_width:
        lines += ["", *header("table | training split rows | ratio 4 x 64 | 4 x 128 | 4 x 256 "
                              "| DCR share 4 x 64 | 4 x 128 | 4 x 256 | train s 4 x 64 | 4 x 128 "
                              "| 4 x 256 | splits", "l" + "r" * 11)]
        for name in WIDTH_TABLES:
            runs = {w: by_width[name, str(w)] for w in WIDTHS if (name, str(w)) in by_width}
            if set(runs) != set(WIDTHS):
                continue
            means = {(field, w): np.mean([r[field] for r in runs[w]]) for w in WIDTHS
                     for field in ("ratio", "dcr_share", "train_seconds")}
            lines.append(f"| {name} | {runs[64][0]['rows']} | "
                         + " | ".join(f"{means['ratio', w]:.3f}" for w in WIDTHS) + " | "
                         + " | ".join(f"{means['dcr_share', w]:.3f}" for w in WIDTHS)
                         + " | " + " | ".join(f"{means['train_seconds', w]:.1f}" for w in WIDTHS)
                         + f" | {len(runs[64])} |")
    by_memorising = grouped(results, "memorising")
    if by_memorising:
        lines += ["", *header("table | ours (best epoch): ratio / DCR share | trained to the end "
                              "| also on all rows | ForestDiffusion", "lrrrr")]
        for name in MEMORISING_TABLES:
            cells = []
            for runs in (method_runs(results, name, "ours"),
                         *(by_memorising.get((name, v), []) for v in MEMORISING),
                         method_runs(results, name, "forest_diffusion")):
                m = averages(runs, "ratio", "dcr_share") if runs else None
                cells.append(f"{m['ratio']:.3f} / {m['dcr_share']:.3f}" if m else "-")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    by_patience = grouped(results, "patience")
    if by_patience:
        lines += ["", *header("table | split | kept epoch (to the end) | epochs trained of | same samples "
                              "| train s: stopped / to the end | share of the time", "lrrrlrr")]
        for name in PATIENCE_TABLES:
            for r in by_patience.get((name, "stop"), []):
                lines.append(
                    f"| {name} | {r['split']} | {r['kept']:,} ({r['kept_to_the_end']:,}) | "
                    f"{r['epochs']:,} of {r['epochs_planned']:,} | {'yes' if r['same_samples'] else 'no'} | "
                    f"{r['train_seconds']:.1f} / {r['train_seconds_to_the_end']:.1f} | "
                    f"{r['train_seconds'] / r['train_seconds_to_the_end']:.2f} |")
    by_wide = grouped(results, "wide")
    if by_wide:
        lines += ["", *header("table | network | ratio (each split) | DCR share "
                              "| missing cells (training split) | rows without gaps (training split) "
                              "| train s", "lllrrrr")]
        for _, width, runs in present(by_wide, ["fertility"], map(str, WIDE_WIDTHS)):
            m = averages(runs, "dcr_share", "missing_cells", "missing_cells_train", "complete_rows",
                         "complete_rows_train", "train_seconds")
            lines.append(f"| fertility | 4 x {width} | {each_split(runs)} | {m['dcr_share']:.3f} | "
                         f"{m['missing_cells']:.3f} ({m['missing_cells_train']:.3f}) | "
                         f"{m['complete_rows']:.3f} ({m['complete_rows_train']:.3f}) | "
                         f"{m['train_seconds']:.1f} |")
    by_categories = grouped(results, "categories")
    if by_categories:
        lines += ["", *header("table | one-hot entries | encoding | per-column TVD (training split's) "
                              "| pair trend error (training split's) | ratio (each split) | DCR share "
                              "| train s", "lrlrrlrr")]
        for name, encoding, runs in present(by_categories, SURVEYS, CATEGORY_ENCODINGS):
            questions, answers = map(int, name.removeprefix("survey_").split("x"))
            tvd = np.mean([np.mean(list(r["tvd"].values())) for r in runs])
            floor = np.mean([np.mean(list(r["tvd_oracle"].values())) for r in runs])
            m = averages(runs, "dcr_share", "train_seconds", "pair_trend_error", "pair_trend_error_floor")
            lines.append(f"| {name} | {questions * answers} | {encoding} | {tvd:.3f} ({floor:.3f}) | "
                         f"{m['pair_trend_error']:.3f} ({m['pair_trend_error_floor']:.3f}) | "
                         f"{each_split(runs)} | {m['dcr_share']:.3f} | {m['train_seconds']:.1f} |")
    by_preprocessing = grouped(results, "skewed")
    if by_preprocessing:
        lines += ["", *header("table | skewed columns | preprocessing | KS (floor) | W1 / sd (floor) "
                              "| ratio | DCR share | cells outside the range | splits", "lrlrrrrrr")]
        for name, preprocess, runs in present(by_preprocessing, SKEWED_TABLES, PREPROCESSING):
            m = averages(runs, "ks", "ks_floor", "w1_sd", "w1_sd_floor", "ratio", "dcr_share",
                         "outside_range")
            lines.append(
                f"| {name} | {runs[0]['skewed_columns']} | {preprocess} | {m['ks']:.3f} "
                f"({m['ks_floor']:.3f}) | {m['w1_sd']:.3f} ({m['w1_sd_floor']:.3f}) | {m['ratio']:.3f} | "
                f"{m['dcr_share']:.3f} | {m['outside_range']:.4f} | {len(runs)} |")
    by_encoding = grouped(results, "encodings")
    if by_encoding:
        lines += ["", *header("table | category encoding | ratio (each split) | C2ST | DCR share | train s",
                              "lllrrr")]
        for _, encoding, runs in present(by_encoding, ["randhie"], ENCODINGS):
            m = averages(runs, "c2st", "dcr_share", "train_seconds")
            lines.append(f"| randhie | {encoding} | {each_split(runs)} | {m['c2st']:.3f} | "
                         f"{m['dcr_share']:.3f} | {m['train_seconds']:.1f} |")
    if "large" in results:
        r = results["large"]
        lines += ["", f"10^6 x 20 mixed table: {r['rows']:,} training rows, {r['steps']:,} steps at batch "
                  f"{r['batch_size']:,}: trained in {r['train_seconds']:.0f} s, peak memory "
                  f"{r['peak_memory_gib']:.1f} GiB; 20,000 rows sampled in "
                  f"{r['sample_20000_seconds']:.1f} s; "
                  f"ratio {r['ratio']:.3f} against 20,000 held-out rows (oracle: 20,000 training rows), "
                  f"DCR share {r['dcr_share']:.3f}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", default="iris,wine,penguins,diabetes,digits")
    parser.add_argument("--no-peer", action="store_true", help="skip ForestDiffusion")
    parser.add_argument("--generations", type=int, default=GENERATIONS)
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--large", action="store_true")
    parser.add_argument("--widths", action="store_true", help="the network's width on the small tables")
    parser.add_argument("--skewed", action="store_true", help="preprocessing of heavy-tailed columns")
    parser.add_argument("--encodings", action="store_true", help="category encodings on randhie")
    parser.add_argument("--wide", action="store_true", help="a wide table with gaps: the network's width")
    parser.add_argument("--memorising", action="store_true",
                        help="ours trained to the end: fidelity against privacy")
    parser.add_argument("--categories", action="store_true",
                        help="many categorical columns (synthetic surveys): one-hot against bits")
    parser.add_argument("--patience", action="store_true",
                        help="the early stop against training to the end: same weights, time")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.ablation:
        ablation(results, args.generations)
    elif args.large:
        large(results)
    elif args.widths:
        widths(results, args.generations)
    elif args.skewed:
        skewed(results, args.generations)
    elif args.encodings:
        encodings(results)
    elif args.wide:
        wide(results, args.generations)
    elif args.memorising:
        memorising(results, args.generations)
    elif args.categories:
        categories(results, args.generations)
    elif args.patience:
        patience(results, args.generations)
    else:
        for name in args.tables.split(","):
            run_table(name, results, not args.no_peer, args.generations)
    write_section("tables", report(results))


if __name__ == "__main__":
    main()
