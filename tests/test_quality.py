"""Statistical behaviour against analytic targets, with tolerances."""

import warnings

import numpy as np
import pytest

import simple_diffusion as sd
from simple_diffusion.evaluation import metrics


def test_short_default_training_puts_a_third_of_the_mass_below_zero():
    model = sd.fit("two_gaussians", epochs=15, seed=0, progress=False)
    share = float((model.sample(20_000, seed=0) < 0).double().mean())
    assert abs(share - 1 / 3) < 0.03  # the model's error, and 9 standard errors of 20,000 draws


def test_exact_samples_score_the_predicted_ratio_and_copies_score_one():
    """The protocol's sizes: 100,000 samples, 10,000 training rows, 100,000 reference draws.

    One draw of the ratio spreads widely (standard deviation about 0.23, measured), so the mean
    over 40 draws is compared, within 4 standard errors (4 * 0.23 / sqrt(40) = 0.15)."""
    rng = np.random.default_rng(0)
    exact, copies = [], []
    for _ in range(40):
        reference, train = rng.normal(size=(100_000, 1)), rng.normal(size=(10_000, 1))
        floor = metrics.distance(train, reference)
        exact.append(metrics.distance(rng.normal(size=(100_000, 1)), reference) / floor)
        copies.append(metrics.distance(train[rng.integers(0, 10_000, 100_000)], reference) / floor)
    expected = metrics.perfect_ratio(100_000, 10_000, 100_000)
    assert expected == pytest.approx(0.426, abs=0.001)
    assert np.mean(exact) == pytest.approx(expected, abs=0.15)
    assert np.mean(copies) > expected + 0.4  # a model that copies its rows looks like "1"


def test_a_shift_scores_high():
    rng = np.random.default_rng(0)
    reference, data = rng.normal(size=(100_000, 1)), rng.normal(size=(10_000, 1))
    shifted = metrics.evaluate(rng.normal(size=(100_000, 1)) + 0.3, reference, ["x"], train=data)
    assert shifted["ratio"] > 10
    assert shifted["distance"] == pytest.approx(0.3, abs=0.02)  # W1 of a shift is the shift


@pytest.mark.parametrize("shown", [139, 140, 142, 143])
def test_the_ks_statistic_of_a_two_valued_column_is_the_gap_between_its_shares_and_warns_of_nothing(shown):
    """A category's column (0 or 0.5, as encoded), 300 rows each: SciPy's exact p-value failed and
    its warning reached the user's `evaluate` output."""
    a = np.r_[np.zeros(300 - shown), np.full(shown, 0.5)]
    b = np.r_[np.zeros(159), np.full(141, 0.5)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert metrics.ks_statistic(a, b) == pytest.approx(abs(shown - 141) / 300)


def test_sd_evaluate_reads_flat_arrays_as_one_column_as_fit_does():
    """A flat ``train`` or ``holdout`` beside flat samples ended in an IndexError."""
    rng = np.random.default_rng(0)
    samples, reference, train, holdout = (rng.normal(size=n) for n in (2000, 1000, 1000, 1000))
    flat = sd.evaluate(samples, against=reference, train=train, holdout=holdout, two_sample_tests=False)
    columns = sd.evaluate(samples[:, None], against=reference[:, None], train=train[:, None],
                          holdout=holdout[:, None], two_sample_tests=False)
    assert flat["ratio"] == columns["ratio"] and flat["memorisation"] == columns["memorisation"]
    with pytest.raises(sd.UserError, match="samples have 1 columns but train has 2"):
        sd.evaluate(samples, against=reference, train=np.ones((5, 2)))
    for empty in ("samples", "against", "train"):  # rows of none: a ZeroDivisionError before
        given = {"samples": samples, "against": reference, "train": train} | {empty: samples[:0]}
        with pytest.raises(sd.UserError, match=f"^{empty}: no rows to evaluate with$"):
            sd.evaluate(given.pop("samples"), **given)


@pytest.mark.parametrize("dim", [1, 3])
def test_memorisation_is_a_half_for_fresh_rows_and_one_for_copies(dim):
    rng = np.random.default_rng(dim)
    train, holdout = rng.normal(size=(5000, dim)), rng.normal(size=(1000, dim))
    fresh = metrics.memorisation(rng.normal(size=(10_000, dim)), train, holdout)
    # 10,000 rows: the share is 0.5 up to binomial noise (0.005, more after the size
    # adjustment) plus the spread of the sets themselves; 0.03 is about 5 standard errors.
    assert fresh["share"] == pytest.approx(0.5, abs=0.03) and not fresh["copied"]
    # Copies moved far less than the rows' spacing (about 5e-4 in one dimension here).
    jittered = train[rng.integers(0, 5000, 10_000)] + 1e-5 * rng.normal(size=(10_000, dim))
    copied = metrics.memorisation(jittered, train, holdout)
    assert copied["share"] > 0.75 and copied["copied"]
    assert "WARNING" in metrics.memorisation_line(copied)


def repeated_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    """Rows of a survey-like table: a code of 300 values of falling frequency (most of them rare,
    so the larger training set holds values the held-out rows lack), a binary and a 5-level column."""
    p = 1 / np.arange(1, 301)
    return np.column_stack([rng.choice(300, n, p=p / p.sum()), rng.integers(0, 2, n),
                            rng.choice(5, n)]).astype(float)


@pytest.mark.parametrize("draw", [lambda rng, n: rng.normal(size=(n, 3)), repeated_rows],
                         ids=["continuous", "repeated-rows"])
def test_memorisation_standard_error_is_the_spread_of_the_share_over_fresh_sets(draw):
    """The jackknife over held-out rows against the share's actual spread: 40 fresh draws of
    300 training, 30 held-out and 2,000 generated rows. The spread of 40 values is known to about
    11%, so the two agree within a factor 1.4 unless the error is wrong (the jackknife without its
    (G - 1) / G factor, as the plain spread of the left-out shares, would be 4.4 times too small;
    leaving no rows out, zero)."""
    rng = np.random.default_rng(0)
    shares, errors = [], []
    for _ in range(40):
        rows = draw(rng, 2330)
        check = metrics.memorisation(rows[330:], rows[:300], rows[300:330])
        shares.append(check["share"])
        errors.append(check["standard_error"])
    assert np.mean(shares) == pytest.approx(0.5, abs=3 * np.std(shares) / np.sqrt(40))
    assert 1 / 1.4 < np.mean(errors) / np.std(shares) < 1.4


def test_a_share_above_the_warning_within_its_noise_is_not_called_copying():
    """Fresh rows against 8 held-out rows pass 0.6 by chance (one draw in ten), some within two
    standard errors of 0.5: the line says so instead of warning that the model reproduces its
    training rows."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        rows = rng.normal(size=(1208, 2))
        check = metrics.memorisation(rows[208:], rows[:200], rows[200:208])
        if metrics.MEMORISATION_WARNING < check["share"] < 0.5 + 2 * check["standard_error"]:
            break
    assert check["share"] > metrics.MEMORISATION_WARNING and not check["copied"]
    line = metrics.memorisation_line(check)
    assert "WARNING" not in line and "not evidence of copying" in line and "8 held-out rows" in line
    assert f"+- {check['standard_error']:.3f}" in line
    # How far the share is, beside how far chance reaches (it read "within 12.71 standard errors").
    distance = (check["share"] - 0.5) / check["standard_error"]
    assert f"but {distance:.1f} standard errors from 0.5, within the noise of 8 held-out rows (chance " \
           f"reaches {check['noise_margin']:.2f})" in line and distance < check["noise_margin"]


@pytest.mark.parametrize("draw", [lambda rng, n: rng.normal(size=(n, 3)), repeated_rows],
                         ids=["continuous", "repeated-rows"])
def test_the_jackknifes_shortcut_is_the_share_recomputed_without_the_group(draw):
    """Leaving a group out reuses each row's three nearest held-out rows; a group of half the
    held-out rows leaves some rows none of them, which are searched again."""
    rng = np.random.default_rng(0)
    samples, train, holdout = draw(rng, 3000), draw(rng, 900), draw(rng, 100)
    nearest = metrics._NearestRows(samples, train, holdout)
    for group in (np.arange(5), np.arange(0, 100, 2)):
        recomputed = metrics._NearestRows(samples, train, np.delete(holdout, group, axis=0)).shares()
        assert nearest.shares(group) == pytest.approx(recomputed, abs=1e-12)


def test_fresh_rows_against_three_held_out_rows_are_rarely_called_copied():
    """A 32-row table holds out 3 rows: the jackknife's error then rests on three values, and
    "two standard errors above 0.5" called fresh rows copied in 10% of 300 draws (measured).
    Student's t with two degrees of freedom (4.30) leaves 3.3%; 0.06 is about 2.7 binomial
    standard errors above that."""
    rng = np.random.default_rng(0)
    copied = []
    for _ in range(300):
        rows = rng.normal(size=(2033, 2))
        check = metrics.memorisation(rows[33:], rows[:30], rows[30:33])
        copied.append(check["copied"])
    assert np.mean(copied) < 0.06
    assert check["noise_margin"] == pytest.approx(4.303, abs=1e-3)


def test_a_few_generated_rows_all_nearer_training_rows_are_not_called_copied():
    """`evaluate --samples-file` of 4 fresh rows all nearer a training row (one chance in 16) read
    1.000 +- 0.000 and a WARNING: the held-out rows' jackknife alone sees no noise in them."""
    rng = np.random.default_rng(0)
    train, holdout = rng.normal(size=(300, 2)), rng.normal(size=(30, 2))
    check = metrics.memorisation(train[:4] + 0.01, train, holdout)
    assert check["share"] == 1.0 and not check["copied"]
    assert ("above 0.6, but 4 generated rows cannot tell copying from chance (which gives as many one "
            "time in 16)") in metrics.memorisation_line(check)
    assert metrics.memorisation(train[:6] + 0.01, train, holdout)["copied"]  # one time in 64: copied


def test_two_sample_tests_say_when_the_samples_are_too_few():
    """`evaluate --samples-file` of 4 rows ended in scikit-learn's traceback (5 folds of 4 rows)."""
    rng = np.random.default_rng(0)
    result = metrics.evaluate(rng.normal(size=(4, 2)), rng.normal(size=(50, 2)), ["a", "b"])
    assert result["two_sample_skipped"] == "4 samples to compare; they need 10" and "c2st" not in result
    assert "c2st" in metrics.evaluate(rng.normal(size=(10, 2)), rng.normal(size=(50, 2)), ["a", "b"])


def test_one_held_out_row_never_calls_rows_copied():
    rows = np.random.default_rng(0).normal(size=(500, 2))
    check = metrics.memorisation(rows[:5] + 1e-6, rows[:50], rows[50:51])  # copies, but who can tell
    assert check["share"] == 1.0 and not check["copied"]
    assert "one held-out row cannot tell copying from chance" in metrics.memorisation_line(check)


def test_memorisation_of_categories_alone_is_a_half_for_fresh_rows_and_one_for_copies():
    """Rows of a few categories match rows of both sets exactly: a tie is half, whatever the
    sets' sizes (the size correction made it 1 / 10 with 9 training rows per held-out one)."""
    rng = np.random.default_rng(0)
    def draw(n):
        return rng.choice(3, size=(n, 2), p=[0.5, 0.3, 0.2]).astype(float)
    train, holdout = draw(900), draw(100)
    fresh = metrics.memorisation(draw(5000), train, holdout)
    assert fresh["share"] == pytest.approx(0.5, abs=0.02) and not fresh["copied"]
    rare = np.array([[2.0, 2.0]])  # a combination only the training rows hold: copied
    train = np.concatenate([train[~(train == 2).all(1)], rare])
    holdout = holdout[~(holdout == 2).all(1)]
    copies = metrics.memorisation(np.repeat(rare, 1000, axis=0), train, holdout)
    assert copies["share"] == 1.0 and copies["copied"]


def test_memorisation_of_a_table_of_repeated_rows_is_a_half_for_fresh_rows():
    """Exact matches in both sets are shared by their counts: a fresh row's nearest row, ties
    broken at random, is a training row with probability n / (n + m). Counting a tie as half
    left fresh rows at 0.57-0.59 here (9 training rows per held-out one), near the warning.
    Over 15 draws the share was 0.500 with spread 0.006 (the reported error 0.006): 0.025 is
    four standard errors."""
    rng = np.random.default_rng(1)
    fresh = metrics.memorisation(repeated_rows(rng, 10_000), repeated_rows(rng, 9000),
                                 repeated_rows(rng, 1000))
    assert fresh["share"] == pytest.approx(0.5, abs=0.025) and not fresh["copied"]
    assert fresh["standard_error"] == pytest.approx(0.006, rel=0.5)


def test_energy_distance_of_two_gaussians_is_the_closed_form():
    """N(0, 1) against N(mu, 1) in one dimension: E|X - Y| with X - Y ~ N(mu, 2) is
    s sqrt(2/pi) exp(-mu^2 / 2s^2) + mu (1 - 2 Phi(-mu / s)), s = sqrt 2; E|X - X'| = 2 / sqrt(pi)."""
    from scipy import stats

    mu, s = 0.5, np.sqrt(2)
    cross = s * np.sqrt(2 / np.pi) * np.exp(-(mu**2) / (2 * s**2)) + mu * (1 - 2 * stats.norm.cdf(-mu / s))
    truth = 2 * cross - 2 * (2 / np.sqrt(np.pi))
    rng = np.random.default_rng(4)
    values = [metrics.energy_distance(rng.normal(size=(1500, 1)), rng.normal(size=(1500, 1)) + mu, seed=k)
              for k in range(30)]
    assert np.mean(values) == pytest.approx(truth, abs=4 * np.std(values) / np.sqrt(30))


def test_energy_distance_is_unbiased_for_equal_distributions():
    """Averaging over all pairs, rows paired with themselves, biases it by about
    (E|X-X'| + E|Y-Y'|) / n = 0.0045 here; the U-statistic's mean is 0."""
    rng = np.random.default_rng(5)
    values = [metrics.energy_distance(rng.normal(size=(500, 1)), rng.normal(size=(500, 1)), seed=k)
              for k in range(200)]
    assert abs(np.mean(values)) < 4 * np.std(values) / np.sqrt(200)
    assert abs(np.mean(values)) < 0.0015


def test_sliced_wasserstein_of_a_shift_in_two_dimensions():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(20_000, 2))
    # Projections of a shift (0.5, 0) onto random unit directions: mean |cos| * 0.5 = 0.5 * 2 / pi.
    assert metrics.sliced_wasserstein(a + np.array([0.5, 0.0]), a) == pytest.approx(0.5 * 2 / np.pi, rel=0.1)


@pytest.mark.parametrize("n, m, d", [(2000, 30_000, 2), (300, 300, 5), (777, 1234, 3)])
def test_sliced_wasserstein_equals_pots(n, m, d):
    """The row-wise computation gives POT's sliced distance (same directions, same quantiles)."""
    import ot

    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(n, d)), rng.standard_t(3, size=(m, d)) + 0.2
    pots = np.mean([ot.sliced_wasserstein_distance(a, b, n_projections=metrics.DIRECTIONS_PER_SEED, p=1,
                                                   seed=7 + k)
                    for k in range(metrics.PROJECTIONS // metrics.DIRECTIONS_PER_SEED)])
    assert metrics.sliced_wasserstein(a, b, seed=7) == pytest.approx(pots, rel=1e-10)


def test_c2st_is_half_for_the_same_distribution_and_one_for_disjoint():
    rng = np.random.default_rng(2)
    same = metrics.c2st(rng.normal(size=(3000, 2)), rng.normal(size=(3000, 2)))
    assert same == pytest.approx(0.5, abs=0.04)
    assert metrics.c2st(rng.normal(size=(3000, 2)), rng.normal(size=(3000, 2)) + 10) > 0.99


def test_c2st_tells_small_samples_apart():
    # 15 rows a side (a 150-row table's held-out tenth): samples 4 standard deviations apart must
    # be told apart, and twin samples not. With scikit-learn's fixed leaf of 20 rows the
    # classifier could not split 24 training rows and every pair scored exactly 0.5.
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(15, 3)), rng.normal(size=(15, 3))
    assert metrics.c2st(a, b + np.array([4.0, 0.0, 0.0])) > 0.85
    same = [metrics.c2st(rng.normal(size=(15, 3)), rng.normal(size=(15, 3)), seed=k) for k in range(20)]
    # Under the null each score's spread is about 0.13 (30 rows, 5 folds); a mean of 20 within 0.1.
    assert np.mean(same) == pytest.approx(0.5, abs=0.1)


def test_energy_distance_zero_for_same_and_positive_for_different():
    rng = np.random.default_rng(3)
    same = metrics.energy_distance(rng.normal(size=(3000, 3)), rng.normal(size=(3000, 3)))
    moved = metrics.energy_distance(rng.normal(size=(3000, 3)), rng.normal(size=(3000, 3)) + 1)
    assert abs(same) < 0.01 < moved


def test_mode_masses_of_target_draws_are_the_weights():
    x = sd.targets.draw("three_gaussians", 200_000, seed=5).numpy()
    assert np.allclose(metrics.mode_masses("three_gaussians", x), [0.25, 0.25, 0.5], atol=0.005)
