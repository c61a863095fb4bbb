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

Results go to BENCHMARKS.md (between this script's markers) and benchmarks/results/likelihood.json.
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


def gaussian_part_run(target: str, share: float, samples: int = 100_000, draws: int = 3) -> dict:
    """No Gaussian part (the default until it had one; seed 0) against ``model.gaussian_part =
    share``: held-out KL or NLL of the latter on the table's fresh draws, and both models'
    sample ratios (means of ``draws`` sampling seeds)."""
    from speed import ratio_to_floor

    data = sd.training_data(target)
    test = sd.targets.draw(target, ROWS, seed=sd.api.REFERENCE_SEED).numpy()
    try:
        truth = sd.targets.get(target).log_prob(torch.as_tensor(test)).numpy()
    except NotImplementedError:
        truth = None
    row: dict = {"target": target, "share": share}
    for name, share_ in (("none", 0.0), ("gaussian", share)):
        config = {"model": {"gaussian_part": share_}}
        start = time.perf_counter()
        model = sd.fit(target, seed=0, progress=False, config=config)
        row[f"{name}_train_seconds"] = time.perf_counter() - start
        row[f"{name}_ratio"] = float(np.mean([ratio_to_floor(model.sample(samples, seed=k).numpy(), data)
                                              for k in range(1, draws + 1)]))
        row[name] = summary(model.log_prob(test).numpy(), truth)
    print(json.dumps(row), flush=True)
    return row


def gaussian_part_table(rows: list[dict], samples: int = 100_000) -> str:
    share = rows[0]["share"]
    lines = [
        f"`model.gaussian_part = {share}` against no Gaussian part (0), seed 0: held-out KL (or NLL) "
        f"on the {ROWS:,} draws of the table above, and the sample ratio (distance to the target / "
        f"the training data's, mean of 3 sampling seeds, {samples:,} samples). Regenerate: "
        f"`.venv/bin/python benchmarks/likelihood.py --gaussian-part {share}`.",
        "",
        f"| target | KL or NLL: no part | share {share} | ratio: no part | share {share} "
        "| train (s): no part / with |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        kl = "kl" in r["gaussian"]
        value = (lambda e: f"{e['kl']:.3f} ± {e['kl_se']:.3f}") if kl else (lambda e: f"NLL {e['nll']:.3f}")
        lines.append(f"| {r['target']} | {value(r['none'])} | {value(r['gaussian'])} | "
                     f"{r['none_ratio']:.2f} | {r['gaussian_ratio']:.2f} | "
                     f"{r['none_train_seconds']:.1f} / {r['gaussian_train_seconds']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--no-divergence", action="store_true", help="skip exact vs Hutchinson")
    parser.add_argument("--gaussian-part", type=float, default=None,
                        help="instead: the default against model.gaussian_part = this share")
    args = parser.parse_args()
    if args.gaussian_part is not None:
        rows = [gaussian_part_run(target, args.gaussian_part) for target in args.targets.split(",")]
        write_section("gaussian_part", gaussian_part_table(rows))
        (ROOT / "benchmarks" / "results" / "gaussian_part.json").write_text(json.dumps(rows, indent=2) + "\n")
        return
    rows = [run_target(target) for target in args.targets.split(",")]
    divergence = None if args.no_divergence else divergence_measurement()
    write_section("likelihood", table(rows, divergence))
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "likelihood.json").write_text(json.dumps({"rows": rows, "divergence": divergence},
                                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
