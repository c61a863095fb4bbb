"""Held-out likelihood on every built-in target: ours against zuko's NSF and a BIC Gaussian mixture.

For each target: the default preset trains on 10,000 draws (seed 0); zuko's neural spline flow
(its documented defaults: 3 transforms, 64 x 64 hidden, Adam 1e-3, batch 256, on the same
standardised rows) trains for the same wall time; scikit-learn's GaussianMixture picks 1-10 full
components by BIC. All three score the same 10,000 fresh draws. Where the target has a closed-form
density, NLL - true NLL estimates the KL divergence to the truth (standard error from the rows'
spread of the difference); elsewhere the NLLs compare the models with each other (the truth's
entropy cancels). Also: planted outliers (6 standard deviations out, and points between modes)
ranked against the 1% quantile of the inliers' scores, and exact against Hutchinson divergence.

    .venv/bin/pip install -c constraints.txt -e ".[benchmarks]"
    .venv/bin/python benchmarks/likelihood.py                      # every target, ~20 minutes
    .venv/bin/python benchmarks/likelihood.py --targets two_gaussians,moons

Results go to BENCHMARKS.md (between this script's markers) and benchmarks/results/likelihood.json
(a target measured again replaces its row; ``--no-divergence`` keeps the last divergence timing).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import write_section

import simple_diffusion as sd
from simple_diffusion.data.targets import TARGETS

ROOT = Path(__file__).resolve().parent.parent
ROWS = 10_000


def nsf_fit(train: np.ndarray, seconds: float, seed: int = 0):
    """zuko's NSF (its documented defaults), trained for ``seconds`` on standardised rows:
    (flow, mean, std)."""
    import zuko

    torch.manual_seed(seed)
    mean, std = train.mean(0), train.std(0)
    x = torch.tensor((train - mean) / std, dtype=torch.float32)
    flow = zuko.flows.NSF(features=x.shape[1], transforms=3, hidden_features=(64, 64))
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for batch in x[torch.randperm(len(x), generator=generator)].split(256):
            loss = -flow().log_prob(batch).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return flow, mean, std


def nsf_log_prob(train: np.ndarray, test: np.ndarray, seconds: float, seed: int = 0) -> np.ndarray:
    """log p of ``test`` in data units under ``nsf_fit``'s flow."""
    flow, mean, std = nsf_fit(train, seconds, seed)
    with torch.no_grad():
        z = torch.tensor((test - mean) / std, dtype=torch.float32)
        return flow().log_prob(z).double().numpy() - np.log(std).sum()


def mixture_fit(train: np.ndarray, seed: int = 0):
    """scikit-learn's full-covariance GaussianMixture with 1-10 components, chosen by BIC."""
    from sklearn.mixture import GaussianMixture

    fits = [GaussianMixture(k, covariance_type="full", random_state=seed).fit(train) for k in range(1, 11)]
    return min(fits, key=lambda fit: fit.bic(train))


def mixture_log_prob(train: np.ndarray, test: np.ndarray, seed: int = 0) -> tuple[np.ndarray, int]:
    best = mixture_fit(train, seed)
    return best.score_samples(test), best.n_components


def summary(log_p: np.ndarray, truth: np.ndarray | None) -> dict:
    nll = -log_p
    row = {"nll": float(nll.mean()), "nll_se": float(nll.std(ddof=1) / math.sqrt(len(nll)))}
    if truth is not None:
        difference = truth + nll
        row |= {"kl": float(difference.mean()),
                "kl_se": float(difference.std(ddof=1) / math.sqrt(len(difference)))}
    return row


def planted(target: str, train: np.ndarray, inlier_truth: np.ndarray | None) -> np.ndarray:
    """Points 6 standard deviations beyond the data along each axis, and midpoints between modes
    that lie in a gap: where the true density is below the 1% quantile of the inliers' (between
    three_gaussians' modes, the wide middle component leaves no gap)."""
    mean, std = train.mean(0), train.std(0)
    points = [mean + sign * 6 * std * np.eye(train.shape[1])[j]
              for j in range(train.shape[1]) for sign in (-1, 1)]
    distribution = sd.targets.get(target)
    if hasattr(distribution, "component_distribution") and inlier_truth is not None:
        modes = distribution.component_distribution.mean.numpy()
        order = np.argsort(modes[:, 0])
        middles = np.array([(modes[a] + modes[b]) / 2 for a, b in itertools.pairwise(order)])
        density = distribution.log_prob(torch.as_tensor(middles)).numpy()
        points += list(middles[density < np.quantile(inlier_truth, 0.01)])
    return np.array(points)


def run_target(target: str) -> dict:
    data = sd.training_data(target)
    test = sd.targets.draw(target, ROWS, seed=sd.api.REFERENCE_SEED).numpy()
    distribution = sd.targets.get(target)
    try:
        truth = distribution.log_prob(torch.as_tensor(test)).numpy()
    except NotImplementedError:
        truth = None
    start = time.perf_counter()
    model = sd.fit(target, seed=0, progress=False)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    ours = model.log_prob(test).numpy()
    score_seconds = time.perf_counter() - start
    flow = nsf_log_prob(data.train, test, train_seconds)
    start = time.perf_counter()
    gmm, components = mixture_log_prob(data.train, test)
    gmm_seconds = time.perf_counter() - start
    row = {"target": target, "dim": test.shape[1], "train_seconds": train_seconds,
           "log_prob_seconds": score_seconds, "gmm_seconds": gmm_seconds, "gmm_components": components,
           "ours": summary(ours, truth), "nsf": summary(flow, truth), "gmm": summary(gmm, truth)}
    if test.shape[1] <= 2:
        outliers = model.log_prob(planted(target, data.train, truth)).numpy()
        threshold = np.quantile(ours, 0.01)
        row["outliers_below_1pct_of_inliers"] = [int((outliers < threshold).sum()), len(outliers)]
    print(json.dumps(row), flush=True)
    return row


def divergence_measurement(target: str = "correlated_6d", rows: int = 2000) -> dict:
    """Exact against Hutchinson divergence on one 6-D model: time and per-row spread."""
    model = sd.fit(target, seed=0, progress=False)
    test = sd.targets.draw(target, rows, seed=7).numpy()
    result = {}
    for exact in (True, False):
        start = time.perf_counter()
        log_p = model.log_prob(test, exact=exact).numpy()
        result["exact" if exact else "hutchinson"] = {"seconds": time.perf_counter() - start,
                                                       "mean": float(log_p.mean()), "values": log_p}
    spread = result["hutchinson"].pop("values") - result["exact"].pop("values")
    result["hutchinson"]["row_spread_vs_exact"] = float(spread.std())
    result["hutchinson"]["mean_difference"] = float(spread.mean())
    return result


def table(rows: list[dict], divergence: dict | None) -> str:
    def cell(entry: dict) -> str:
        if "kl" in entry:
            return f"{entry['kl']:.3f} ± {entry['kl_se']:.3f}"
        return f"NLL {entry['nll']:.3f}"

    lines = [
        f"Default preset, seed 0; {ROWS:,} fresh draws per target; KL to the truth (NLL − true NLL, "
        "± standard error) where the target's density is known, else the NLL itself (lower is "
        "better in both). zuko NSF trained for the same wall time as ours; GMM: full covariance, "
        "1-10 components by BIC. Torch threads as set by each library; 2-core CPU machine.",
        "",
        "| target | d | ours | zuko NSF | GMM (k) | train (s) | ours log_prob 10k (s) "
        "| outliers ranked below 1% of inliers |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        outliers = r.get("outliers_below_1pct_of_inliers")
        lines.append(
            f"| {r['target']} | {r['dim']} | {cell(r['ours'])} | {cell(r['nsf'])} | "
            f"{cell(r['gmm'])} ({r['gmm_components']}) | {r['train_seconds']:.1f} | "
            f"{r['log_prob_seconds']:.1f} | {f'{outliers[0]}/{outliers[1]}' if outliers else '-'} |"
        )
    if divergence:
        exact, hutchinson = divergence["exact"], divergence["hutchinson"]
        lines += ["", f"Divergence on correlated_6d, 2,000 rows: exact {exact['seconds']:.1f} s, "
                  f"Hutchinson {hutchinson['seconds']:.1f} s; Hutchinson's rows spread "
                  f"{hutchinson['row_spread_vs_exact']:.3f} nats around the exact values (mean "
                  f"difference {hutchinson['mean_difference']:+.4f})."]
    return "\n".join(lines)


def compare(target: str, configs: dict[str, dict], samples: int = 100_000, draws: int = 3) -> dict:
    """Each named config (overrides of the default preset, seed 0) on ``target``: held-out KL or
    NLL on the fresh draws of the table above, the sample ratio (mean of ``draws`` sampling
    seeds, each kept) and the training seconds."""
    from speed import ratio_to_floor

    data = sd.training_data(target)
    test = sd.targets.draw(target, ROWS, seed=sd.api.REFERENCE_SEED).numpy()
    try:
        truth = sd.targets.get(target).log_prob(torch.as_tensor(test)).numpy()
    except NotImplementedError:
        truth = None
    row: dict = {"target": target}
    for name, config in configs.items():
        start = time.perf_counter()
        model = sd.fit(target, seed=0, progress=False, config=config)
        seconds = time.perf_counter() - start
        ratios = [ratio_to_floor(model.sample(samples, seed=k).numpy(), data) for k in range(1, draws + 1)]
        row[name] = summary(model.log_prob(test).numpy(), truth) | {
            "train_seconds": seconds, "ratio": float(np.mean(ratios)), "ratios": ratios}
    print(json.dumps(row), flush=True)
    return row


def comparison_table(rows: list[dict], intro: str) -> str:
    """KL (or NLL), ratio and training seconds of each compared config, side by side."""
    names = [key for key in rows[0] if key != "target"]
    value = lambda e: f"{e['kl']:.3f} ± {e['kl_se']:.3f}" if "kl" in e else f"NLL {e['nll']:.3f}"  # noqa: E731
    lines = [intro, "", "| target | " + " | ".join(
        f"KL or NLL: {n} | ratio: {n} | train (s): {n}" for n in names) + " |",
        "| --- |" + " ---: | ---: | ---: |" * len(names)]
    draws = lambda e: f" ({', '.join(f'{x:.2f}' for x in e['ratios'])})" if e["ratios"] else ""  # noqa: E731
    for r in rows:
        cells = [f"{value(r[n])} | {r[n]['ratio']:.2f}{draws(r[n])} | {r[n]['train_seconds']:.1f}"
                 for n in names]
        lines.append(f"| {r['target']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def settings(changes: dict[str, dict]) -> str:
    """Config overrides as config.toml's keys: ``model.gaussian_part = 0.9, ...``."""
    return ", ".join(f"`{section}.{key} = {value!r}`" for section, values in changes.items()
                     for key, value in values.items())


def comparison(section: str, targets: list[str], configs: dict[str, dict], intro: str) -> None:
    """``compare`` on each target not yet in ``results/<section>.json`` with these configs (rows of
    other configs, e.g. another share, are measured again), then the table."""
    path = ROOT / "benchmarks" / "results" / f"{section}.json"
    saved = json.loads(path.read_text()) if path.exists() else []
    done = {r["target"]: r for r in saved if set(r) - {"target"} == set(configs)}
    for target in targets:
        if target not in done:
            done[target] = compare(target, configs)
            path.write_text(json.dumps(list(done.values()), indent=2) + "\n")
    write_section(section, comparison_table([done[t] for t in targets if t in done], intro))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--no-divergence", action="store_true", help="skip exact vs Hutchinson")
    parser.add_argument("--gaussian-part", type=float, default=None,
                        help="instead: no Gaussian part against model.gaussian_part = this share")
    parser.add_argument("--density-preset", action="store_true",
                        help="instead: the default against the density preset")
    args = parser.parse_args()
    targets = args.targets.split(",")
    regenerate = "`.venv/bin/python benchmarks/likelihood.py {}` (targets already in " \
                 "benchmarks/results/{}.json are kept; delete a row to measure it again)"
    if args.gaussian_part is not None:
        share = args.gaussian_part
        comparison("gaussian_part", targets, {
            "no part": {"model": {"gaussian_part": 0.0}},
            f"share {share}": {"model": {"gaussian_part": share}},
        }, f"`model.gaussian_part = {share}` against no Gaussian part, seed 0: held-out KL (or NLL) on "
           f"the {ROWS:,} draws of the table above, the sample ratio (distance to the target / the "
           "training data's, mean of 3 sampling seeds of 100,000 samples, each shown). Regenerate: "
           + regenerate.format(f"--gaussian-part {share}", "gaussian_part"))
        return
    if args.density_preset:
        changes = sd.config.DENSITY_CHANGES
        comparison("density_preset", targets, {"default": {}, "density": changes},
                   f"The density preset (`--preset density`: {settings(changes)}) against the "
                   f"default, seed 0: held-out KL (or NLL) on the {ROWS:,} draws of the table "
                   "above, the sample ratio (mean of 3 sampling seeds of 100,000 samples, each "
                   "shown), training seconds (two threads). Regenerate: "
                   + regenerate.format("--density-preset", "density_preset"))
        return
    saved_path = ROOT / "benchmarks" / "results" / "likelihood.json"
    saved = json.loads(saved_path.read_text()) if saved_path.exists() else {"rows": [], "divergence": None}
    measured = {row["target"]: row for row in (run_target(t) for t in args.targets.split(","))}
    # Targets measured now replace their rows; the others' stay, in the targets' order.
    rows = sorted([r for r in saved["rows"] if r["target"] not in measured] + list(measured.values()),
                  key=lambda r: list(TARGETS).index(r["target"]))
    divergence = saved["divergence"] if args.no_divergence else divergence_measurement()
    write_section("likelihood", table(rows, divergence))
    saved_path.parent.mkdir(parents=True, exist_ok=True)
    saved_path.write_text(json.dumps({"rows": rows, "divergence": divergence}, indent=2) + "\n")


if __name__ == "__main__":
    main()
