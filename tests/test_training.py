"""The training loop's arithmetic against hand computations: learning rate, EMA, noise-level draws,
prediction types, and the optimiser's fallback."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from simple_diffusion import build, choices, config
from simple_diffusion.data import encoders
from simple_diffusion.diffusion import prediction, schedules
from simple_diffusion.model import DiffusionModel
from simple_diffusion.training import budget, engine, loop
from simple_diffusion.training.loop import Trainer


def make_trainer(**changes) -> Trainer:
    train = {"epochs": 4, "batch_size": 50, "warmup_steps": 10, "keep_best": "no"} | changes
    cfg = config.override(config.preset("default"), {"train": train, "model": {"hidden": [16, 16]}})
    schedule = build.schedule(cfg.schedule)
    torch.manual_seed(0)
    net = build.denoiser(cfg.model, 1, schedule.num_timesteps)
    data = torch.randn(1000, 1, generator=torch.Generator().manual_seed(1))
    return build.trainer(cfg, net, schedule, data, data[:100])


def test_learning_rate_warms_up_then_follows_the_cosine_to_zero():
    trainer = make_trainer()
    lr, total = trainer.lr, trainer.total_steps  # 4 epochs x 20 steps
    assert total == 80
    assert trainer._learning_rate(0) == pytest.approx(lr * 1 / 10 * 0.5 * (1 + math.cos(0)))
    assert trainer._learning_rate(4) == pytest.approx(lr * 5 / 10 * 0.5 * (1 + math.cos(math.pi * 4 / 80)))
    assert trainer._learning_rate(40) == pytest.approx(lr * 0.5)
    assert trainer._learning_rate(79) == pytest.approx(lr * 0.5 * (1 + math.cos(math.pi * 79 / 80)))
    assert trainer._learning_rate(79) < 1e-3 * lr


def test_the_optimiser_receives_the_scheduled_rate():
    trainer = make_trainer()
    trainer.run(progress=False)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(trainer._learning_rate(79))


def test_extending_an_unfinished_run_continues_the_decay_without_a_jump():
    trainer = make_trainer()
    trainer.epoch = 2  # as if resumed after epoch 2 of 4
    before = trainer._learning_rate(40)
    trainer.extend(10)
    assert trainer.total_steps == 200 and trainer.epochs == 10
    assert trainer._learning_rate(40) == pytest.approx(before)
    assert trainer._learning_rate(120) == pytest.approx(before * 0.5)  # halfway through the rest
    assert trainer._learning_rate(199) < 1e-3 * before
    assert trainer._learning_rate(10) == pytest.approx(make_trainer()._learning_rate(10))  # the past


def test_extending_a_finished_run_restarts_the_decay_from_the_peak():
    trainer = make_trainer()
    trainer.epoch = 4
    trainer.extend(6)
    assert trainer._learning_rate(80) == pytest.approx(trainer.lr)
    assert trainer._learning_rate(100) == pytest.approx(trainer.lr * 0.5)
    with pytest.raises(Exception, match="already trained 4 epochs"):
        trainer.extend(3)


def test_ema_is_the_warmed_up_exponential_average_of_the_weights(monkeypatch):
    trainer = make_trainer(ema_decay=0.9, epochs=1)
    seen = []
    original = Trainer._update_ema

    def record(self, step):
        seen.append([p.detach().clone() for p in self.params])
        original(self, step)

    monkeypatch.setattr(Trainer, "_update_ema", record)
    start = [p.detach().clone() for p in trainer.params]
    trainer.run(progress=False)
    average = start
    for step, weights in enumerate(seen, start=1):
        decay = min(0.9, (1 + step) / (10 + step))
        average = [decay * a + (1 - decay) * w for a, w in zip(average, weights)]
    for mine, theirs in zip(average, trainer.ema):
        torch.testing.assert_close(mine, theirs)
    averaged = list(trainer.averaged_net().parameters())
    flat = torch.cat([p.flatten() for p in averaged])
    views = engine.parameter_views(trainer.ema[0], trainer.net)  # the fast path's flat EMA buffer
    assert torch.allclose(flat, torch.cat([v.flatten() for v in views]))
    assert not torch.allclose(flat, torch.cat([p.detach().flatten() for p in trainer.net.parameters()]))


def test_validation_loss_is_that_of_the_saved_ema_weights():
    trainer = make_trainer(ema_decay=0.99, epochs=2)
    trainer.run(progress=False)
    state = trainer.val_generator.get_state()
    reported = trainer.validation_loss()
    trainer.val_generator.set_state(state)
    x_t, t, target, _ = trainer.objective.draw(trainer.val_data, trainer.val_generator)
    with torch.no_grad():
        saved = float(torch.nn.functional.mse_loss(trainer.averaged_net()(x_t, t), target))
        live = float(torch.nn.functional.mse_loss(trainer.net(x_t, t), target))
    assert reported == pytest.approx(saved, rel=1e-6)
    assert reported != pytest.approx(live, rel=1e-6)


def test_validation_is_spaced_by_training_rows_except_in_the_seed_preset():
    assert build.training_budget(config.preset("default"), 10_000).train.validate_every == 4
    assert build.training_budget(config.preset("default"), 100_000).train.validate_every == 1
    assert build.training_budget(config.preset("seed"), 10_000).train.validate_every == 1  # its spec
    trainer = make_trainer(epochs=7, validate_every=3)
    trainer.run(progress=False)
    measured = [h["epoch"] for h in trainer.history if not math.isnan(h["val_loss"])]
    assert measured == [1, 3, 6, 7]  # the first, every third and the last epoch; NaN between


OVERFITTING = {"ema_decay": 0.9, "epochs": 30, "keep_best": "yes", "lr": 0.05}
"""A large rate: later epochs are worse than an early one (with validations every 2 epochs)."""


def flat_weights(net: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def test_keep_best_keeps_the_epoch_of_lowest_validation_loss_and_resumes_with_it(monkeypatch):
    monkeypatch.setattr(budget, "VALIDATION_SPACING", 2000)  # every 2 epochs of 1,000 rows
    straight = make_trainer(**OVERFITTING, patience=0)
    straight.run(progress=False)
    assert straight.validation_loss() == straight.validation_loss()  # the same draws every time
    losses = [h["val_loss"] for h in straight.history]
    assert straight.validate_every == 2 and [math.isnan(v) for v in losses[1:4]] == [False, True, False]
    best_loss, best_epoch, weights = straight.best
    assert best_loss == min(v for v in losses if not math.isnan(v)) and losses[best_epoch - 1] == best_loss
    net = straight.averaged_net()
    kept = flat_weights(net)
    expected = torch.cat([v.flatten() for v in engine.parameter_views(weights[0], net)])
    assert torch.equal(kept, expected) and best_epoch < 30 and straight.epoch == 30
    halves = make_trainer(**OVERFITTING, patience=0)
    halves.epochs = 16
    halves.run(progress=False)
    resumed = make_trainer(**OVERFITTING, patience=0)
    resumed.load_state_dict(halves.state_dict())
    resumed.run(progress=False)
    assert resumed.best_epoch == best_epoch
    assert torch.equal(flat_weights(resumed.averaged_net()), kept)


def learning_by_heart(patience: float) -> Trainer:
    """32 training rows, 100 epochs: the validation loss is lowest at epoch 54."""
    train = {"epochs": 100, "batch_size": 32, "warmup_steps": 10, "keep_best": "yes", "ema_decay": 0.9,
             "lr": 0.01, "validate_every": 2, "patience": patience}
    cfg = config.override(config.preset("default"), {"train": train, "model": {"hidden": [32, 32]}})
    schedule = build.schedule(cfg.schedule)
    torch.manual_seed(0)
    net = build.denoiser(cfg.model, 1, schedule.num_timesteps)
    data = torch.randn(132, 1, generator=torch.Generator().manual_seed(1))
    return build.trainer(cfg, net, schedule, data[:32], data[32:])


def test_patience_ends_the_run_early_with_the_weights_of_a_run_to_the_end_and_resumes_to_the_same_stop():
    to_the_end = learning_by_heart(patience=0)
    to_the_end.run(progress=False)
    patient = learning_by_heart(patience=0.25)
    patient.run(progress=False)
    best = patient.best_epoch
    assert best == to_the_end.best_epoch and to_the_end.epoch == 100
    # stopped at the first validation a quarter of the run (25 epochs) past the best epoch
    assert 25 <= patient.epoch - best < 25 + patient.validate_every
    assert not math.isnan(patient.history[-1]["val_loss"]) and len(patient.history) == patient.epoch
    assert torch.equal(flat_weights(patient.averaged_net()), flat_weights(to_the_end.averaged_net()))

    def interrupt(trainer: Trainer) -> None:
        if trainer.epoch == best + 1:
            raise KeyboardInterrupt

    interrupted = learning_by_heart(patience=0.25)
    with pytest.raises(KeyboardInterrupt):
        interrupted.run(progress=False, on_epoch_end=interrupt)
    resumed = learning_by_heart(patience=0.25)
    resumed.load_state_dict(interrupted.state_dict())
    resumed.run(progress=False)
    assert resumed.epoch == patient.epoch and resumed.best_epoch == best
    assert torch.equal(flat_weights(resumed.averaged_net()), flat_weights(patient.averaged_net()))
    finished = learning_by_heart(patience=0.25)  # resuming a stopped run trains no more
    finished.load_state_dict(patient.state_dict())
    assert finished.run(progress=False) == patient.history and finished.epoch == patient.epoch


def drawn_levels(trainer: Trainer, n: int = 20_000):
    """Timesteps and VE noise levels of one draw for x_0 = 0 (then x_t = sigma_VP * noise)."""
    trainer.objective.gaussian = None  # the target is then the noise itself
    x_t, t, noise, _ = trainer.objective.draw(torch.zeros(n, 1), torch.Generator().manual_seed(3))
    sigma_vp = (x_t / noise).double().flatten()
    return t.double(), sigma_vp / (1 - sigma_vp**2).sqrt()


def test_continuous_training_draws_uniform_real_timesteps_at_their_noise_level():
    trainer = make_trainer(timesteps="continuous")
    t, level = drawn_levels(trainer)
    assert (t != t.round()).float().mean() > 0.99
    assert float(t.min()) >= trainer.objective.t_min and float(t.max()) <= trainer.objective.t_max
    assert stats.kstest(((t - 1) / 999).numpy(), "uniform").pvalue > 1e-3
    resolvable = level < 50  # above, float32's 1 - sigma_VP^2 loses the level
    assert resolvable.float().mean() > 0.9
    torch.testing.assert_close(level[resolvable], trainer.objective.schedule.t_to_sigma(t[resolvable]),
                               rtol=2e-3, atol=1e-4)


def test_logsnr_training_draws_log_sigma_uniformly_over_the_sampling_range():
    trainer = make_trainer(timesteps="logsnr")
    t, level = drawn_levels(trainer)
    low, high = trainer.objective.log_sigma_range
    assert high == pytest.approx(math.log(80.0))  # capped where sampling starts
    u = (level.log() - low) / (high - low)
    assert stats.kstest(u.numpy(), "uniform").pvalue > 1e-3
    torch.testing.assert_close(t, trainer.objective.schedule.sigma_to_t(level), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("kind", choices.PREDICTION_TYPES)
def test_each_prediction_type_recovers_the_clean_data(kind):
    g = torch.Generator().manual_seed(4)
    x0, eps = torch.randn(100, 2, generator=g), torch.randn(100, 2, generator=g)
    alpha = torch.rand(100, 1, generator=g).clamp_min(0.05)
    sigma = (1 - alpha**2).sqrt()
    x_t = alpha * x0 + sigma * eps
    exact = prediction.target(kind, x0, eps, alpha, sigma)
    torch.testing.assert_close(prediction.to_sample(kind, exact, x_t, alpha, sigma), x0)


class ExactGaussianDenoiser(torch.nn.Module):
    """E[x_0 | x_t] for standard normal data: alpha_t x_t (a ``sample``-predicting network)."""

    def __init__(self, schedule: schedules.Schedule):
        super().__init__()
        self.schedule = schedule
        self.weight = torch.nn.Parameter(torch.zeros(1))  # gives the model a parameter dtype

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        alpha = 1 / (1 + self.schedule.t_to_sigma(t) ** 2).sqrt()
        return alpha.to(x_t.dtype).reshape(-1, 1) * x_t


def test_a_sample_predicting_model_samples_its_distribution():
    cfg = config.override(config.preset("default"), {"model": {"prediction_type": "sample"}})
    schedule = build.schedule(cfg.schedule)
    identity = encoders.fit(torch.randn(10, 1, dtype=torch.float64), ["x"], scaling="none")
    model = DiffusionModel(ExactGaussianDenoiser(schedule), schedule, identity, cfg, ["x"])
    x = model.sample(40_000, seed=0).numpy()[:, 0]
    n = len(x)
    assert abs(x.mean()) < 4 / np.sqrt(n)
    assert abs(x.var() - 1) < 4 * np.sqrt(2 / n)


def test_without_the_fused_kernel_the_optimiser_falls_back_to_the_same_steps(monkeypatch):
    """torch before 2.4 has no fused Adam for CPU tensors: the probe says so and both optimisers
    fall back, taking the same steps as torch.optim.Adam."""
    monkeypatch.setattr(engine, "fused_adam_available", lambda device_type="cpu": False)
    param = torch.randn(50, generator=torch.Generator().manual_seed(5))
    grad = torch.zeros(50)
    flat_adam = engine.FlatAdam(param, grad, lr=0.01)
    assert not flat_adam._fused
    reference = param.clone().requires_grad_(True)
    torch_adam = torch.optim.Adam([reference], lr=0.01)
    for k in range(5):
        g = torch.randn(50, generator=torch.Generator().manual_seed(10 + k))
        grad.copy_(g)
        flat_adam.step()
        reference.grad = g.clone()
        torch_adam.step()
    torch.testing.assert_close(param, reference.detach(), rtol=1e-5, atol=1e-6)
    trainer = make_trainer(fast=False)
    assert not trainer.optimizer.defaults["fused"]


def test_the_probe_reports_a_missing_cpu_kernel(monkeypatch):
    def cuda_only(*args, **kwargs):
        raise RuntimeError("_fused_adam_ is not implemented for CPU tensors")

    monkeypatch.setattr(torch, "_fused_adam_", cuda_only)
    assert engine.fused_adam_available.__wrapped__() is False


@pytest.mark.parametrize("fast", [True, False])
def test_an_epoch_drawn_in_segments_visits_each_row_once_on_the_learning_rate_schedule(monkeypatch, fast):
    """A table larger than a segment is drawn a segment at a time (here 3 batches of 50): the
    epoch still shows every row once (the last partial batch dropped) and every step gets its
    own learning rate, as an epoch drawn at once does."""
    monkeypatch.setattr(loop, "SEGMENT_ROWS", 150)
    trainer = make_trainer(epochs=2, fast=fast)
    shown, rates = [], []
    draw = trainer.objective.draw
    monkeypatch.setattr(trainer.objective, "draw",
                        lambda x0, g, **kw: shown.append(x0.clone()) or draw(x0, g, **kw))
    set_rate = trainer._set_learning_rate
    monkeypatch.setattr(trainer, "_set_learning_rate", lambda lr: rates.append(lr) or set_rate(lr))
    trainer.run(progress=False)
    assert [len(x) for x in shown[:7]] == [150] * 6 + [100]  # 20 steps of 50: 7 segments an epoch
    first_epoch = torch.cat(shown[:7]).flatten().sort().values
    assert torch.equal(first_epoch, trainer.train_data.flatten().sort().values)
    assert rates == [trainer._learning_rate(step) for step in range(trainer.total_steps)]
    assert len(trainer.history) == 2 and all(math.isfinite(h["train_loss"]) for h in trainer.history)


def test_the_snapshot_taken_after_every_epoch_copies_what_changes_and_shares_the_rest():
    """The run folder snapshots the trainer after each epoch; copying the whole history each
    time made a table of 5,000 short epochs train 2.6x slower (quadratic in epochs)."""
    trainer = make_trainer(keep_best="yes")
    trainer.run(progress=False)
    state = trainer.state_dict()
    assert all(a is b for a, b in zip(state["history"], trainer.history, strict=True))
    assert all(a is b for a, b in zip(state["best"][2], trainer.best[2], strict=True))
    live = trainer.net.state_dict()
    for name, saved in state["net"].items():  # weights change in place: copied
        assert saved.data_ptr() != live[name].data_ptr() and torch.equal(saved, live[name])
    assert state["ema"][0].data_ptr() != trainer.ema[0].data_ptr()
    moments = trainer.optimizer.state_dict()
    assert state["optimizer"]["exp_avg"].data_ptr() != moments["exp_avg"].data_ptr()


def test_fit_says_where_patience_stopped_and_which_epoch_it_kept(capsys):
    import simple_diffusion as sd

    rows = np.random.default_rng(0).normal(size=(132, 1))  # 32 to train on: lowest at epoch 58
    settings = {"train": {"epochs": 100, "batch_size": 32, "lr": 0.01, "validate_every": 2,
                          "keep_best": "yes"}, "model": {"hidden": [32, 32]}}
    model = sd.fit(rows[:32], validation=rows[32:], config=settings, progress=False, verbose=True,
                   num_samples=0)
    said = capsys.readouterr().err
    epochs, best = model.info["epochs"], model.info["best_epoch"]
    assert epochs < 100
    assert (f"stopped at epoch {epochs} of 100: no lower validation loss since epoch {best}, whose "
            "weights are kept (25% of the run without one; config={'train': {'patience': 0}} trains "
            "to the end)") in said
    sd.fit(rows[:32], validation=rows[32:], config=config.merge(settings, {"train": {"patience": 0}}),
           progress=False, verbose=True, num_samples=0)
    assert "stopped" not in capsys.readouterr().err


def test_the_loss_plot_of_a_run_stopped_early_says_where_and_why(monkeypatch):
    from simple_diffusion.evaluation import plots

    titles = []
    monkeypatch.setattr(plots, "_png", lambda fig: titles.append(fig.axes[0].get_title()) or b"")
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.0 + abs(e - 4) / 10} for e in range(1, 11)]
    plots.loss_plot(history, title="runs/w", kept=4, planned=40)
    plots.loss_plot(history, title="runs/w", kept=4, planned=10)
    assert titles == ["runs/w\nstopped at epoch 10 of 40: no lower validation loss since 4", "runs/w"]


def test_ranks_stop_together_when_any_of_them_is_out_of_patience():
    trainer = learning_by_heart(patience=0.25)
    asked = []

    class OtherRankOutOfPatience:
        def any(self, flag: bool, device=None) -> bool:
            asked.append(flag)
            return True

    trainer.epochs = 3  # epochs 1 and 3 validate (every 2, and the last), epoch 2 does not
    trainer.run(progress=False)
    trainer.ranks = OtherRankOutOfPatience()
    assert trainer._stopping() and asked == [False]  # this rank alone would train on
    trainer.history[-1]["val_loss"] = math.nan  # after an epoch without validation: not asked
    assert not trainer._stopping() and asked == [False]


def test_the_command_line_hint_after_an_early_stop_trains_to_the_end(tmp_path, capsys):
    from helpers import cli

    data = tmp_path / "d.csv"
    np.savetxt(data, np.random.default_rng(1).normal(size=(60, 1)), header="x", comments="", delimiter=",")
    settings = tmp_path / "c.toml"
    settings.write_text("[train]\nepochs = 100\nbatch_size = 32\nlr = 0.01\nvalidate_every = 2\n"
                        "[model]\nhidden = [32, 32]\n")
    assert cli(["train", str(tmp_path / "r"), "--data", str(data), "--config", str(settings), "-n", "0"]) == 0
    hint = re.search(r"a --config file with `\[train\]` then `(patience = 0)` trains to the end",
                     capsys.readouterr().err)
    assert hint is not None and len(pd.read_csv(tmp_path / "r" / "losses.csv")) < 100
    settings.write_text(settings.read_text().replace("[train]\n", f"[train]\n{hint[1]}\n"))
    assert cli(["train", str(tmp_path / "r"), "--data", str(data), "--config", str(settings), "-n", "0",
                "--overwrite"]) == 0
    assert "stopped" not in capsys.readouterr().err
    assert len(pd.read_csv(tmp_path / "r" / "losses.csv")) == 100
