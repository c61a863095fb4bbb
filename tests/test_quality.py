"""Statistical behaviour against analytic targets, with tolerances."""

import numpy as np
import pytest

import simple_diffusion as sd
from simple_diffusion import metrics


def test_short_default_training_puts_a_third_of_the_mass_below_zero():
    model = sd.fit("two_gaussians", epochs=15, seed=0, progress=False)
    share = float((model.sample(50_000, seed=0) < 0).double().mean())
    assert abs(share - 1 / 3) < 0.03


def test_training_data_scores_at_the_floor_and_a_shift_scores_high():
    rng = np.random.default_rng(0)
    reference, data = rng.normal(size=(100_000, 1)), rng.normal(size=(10_000, 1))
    same = metrics.evaluate(rng.normal(size=(100_000, 1)), reference, ["x"], train=data)
    shifted = metrics.evaluate(rng.normal(size=(100_000, 1)) + 0.3, reference, ["x"], train=data)
    assert same["ratio"] < 1.5
    assert shifted["ratio"] > 10
    assert shifted["distance"] == pytest.approx(0.3, abs=0.02)  # W1 of a shift is the shift


def test_sliced_wasserstein_of_a_shift_in_two_dimensions():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(20_000, 2))
    # Projections of a shift (0.5, 0) onto random unit directions: mean |cos| * 0.5 = 0.5 * 2 / pi.
    assert metrics.sliced_wasserstein(a + np.array([0.5, 0.0]), a) == pytest.approx(0.5 * 2 / np.pi, rel=0.1)


def test_c2st_is_half_for_the_same_distribution_and_one_for_disjoint():
    rng = np.random.default_rng(2)
    same = metrics.c2st(rng.normal(size=(3000, 2)), rng.normal(size=(3000, 2)))
    assert same == pytest.approx(0.5, abs=0.04)
    assert metrics.c2st(rng.normal(size=(3000, 2)), rng.normal(size=(3000, 2)) + 10) > 0.99


def test_energy_distance_zero_for_same_and_positive_for_different():
    rng = np.random.default_rng(3)
    same = metrics.energy_distance(rng.normal(size=(3000, 3)), rng.normal(size=(3000, 3)))
    moved = metrics.energy_distance(rng.normal(size=(3000, 3)), rng.normal(size=(3000, 3)) + 1)
    assert abs(same) < 0.01 < moved


def test_mode_masses_of_target_draws_are_the_weights():
    x = sd.targets.draw("three_gaussians", 200_000, seed=5).numpy()
    assert np.allclose(metrics.mode_masses("three_gaussians", x), [0.25, 0.25, 0.5], atol=0.005)
