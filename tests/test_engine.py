"""The fast path computes what autograd computes."""

import pytest
import torch

from simple_diffusion import build, config
from simple_diffusion.diffusion import denoisers, schedules
from simple_diffusion.training import engine, loop

NETWORKS = {
    "seed": lambda: denoisers.MLP(1, [16, 16], denoisers.RawTime(), "relu"),
    "default-1d": lambda: denoisers.MLP(1, [64, 64, 64], denoisers.FourierTime(8, 1000), "silu"),
    "default-5d": lambda: denoisers.MLP(5, [32, 32], denoisers.FourierTime(4, 1000), "relu"),
    "conditional": lambda: denoisers.MLP(3, [32, 32], denoisers.FourierTime(4, 1000), "silu",
                                         condition_size=2),
}


@pytest.mark.parametrize("name", NETWORKS)
def test_training_inputs_match_the_one_timestep_path(name):
    """The training inputs (built column by column) place x_t, the time features and the
    condition where sampling's one-timestep path (time as a bias) reads them."""
    torch.manual_seed(0)
    net = NETWORKS[name]()
    x = torch.randn(16, net.dim)
    condition = torch.randn(16, net.condition_size) if net.condition_size else None
    t = torch.tensor(417.0)
    assert torch.allclose(net(x, t.expand(16), condition), net(x, t, condition), atol=1e-6)


@pytest.mark.parametrize("name", NETWORKS)
def test_sampling_s_kept_activations_give_the_same_numbers_and_are_reused(name):
    """A sampler's calls write the hidden layers into tensors kept between calls: the output is
    the plain forward's to the bit, never one of those tensors, and they are not used under
    autograd (its backward needs every layer's own output)."""
    torch.manual_seed(0)
    net = NETWORKS[name]()
    x, other = torch.randn(64, net.dim), torch.randn(64, net.dim)
    condition = torch.randn(64, net.condition_size) if net.condition_size else None
    t = torch.tensor(417.0)
    kept: dict = {}
    with torch.inference_mode():
        first = net(x, t, condition, activations=kept)
        places = sorted(v.data_ptr() for v in kept.values())
        second = net(other, t, condition, activations=kept)
        assert torch.equal(first, net(x, t, condition)) and torch.equal(second, net(other, t, condition))
    hidden_to_hidden = len(net.layers) - 2  # two tensors at most: each layer reads the other's
    assert len(kept) == min(2, hidden_to_hidden) and sorted(v.data_ptr() for v in kept.values()) == places
    graph: dict = {}
    net(x, t, condition, activations=graph).square().sum().backward()
    assert not graph and all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("name", NETWORKS)
def test_fast_gradients_equal_autograd(name):
    torch.manual_seed(0)
    net = NETWORKS[name]()
    batch = 64
    x = torch.randn(batch, net.dim)
    t = torch.randint(1, 1000, (batch,)).float()
    target = torch.randn(batch, net.dim)
    condition = torch.randn(batch, net.condition_size) if net.condition_size else None

    loss = torch.nn.functional.mse_loss(net(x, t, condition), target)
    expected = torch.autograd.grad(loss, list(net.parameters()))

    flat, grad = engine.flatten_parameters(net)
    fast = engine.FastMLP(net, flat, grad, batch)
    out = fast.forward(net.inputs(x, t, condition, ones_column=True))
    assert torch.allclose(out, net(x, t, condition).detach(), atol=1e-6)
    fast.backward(2 * (out - target) / target.numel())
    for p, g in zip(net.parameters(), expected):
        assert torch.allclose(p.grad, g, atol=1e-5, rtol=1e-4)


def test_flat_adam_equals_torch_adam():
    torch.manual_seed(0)
    param = torch.randn(300)
    reference = param.clone().requires_grad_()
    grad = torch.zeros(300)
    ours = engine.FlatAdam(param, grad, lr=1e-2)
    theirs = torch.optim.Adam([reference], lr=1e-2)
    for _ in range(50):
        g = torch.randn(300)
        grad.copy_(g)
        ours.step()
        reference.grad = g.clone()
        theirs.step()
    assert torch.allclose(param, reference.detach(), atol=1e-6)


@pytest.mark.parametrize("preset", ["seed", "default"])
def test_fast_training_follows_the_autograd_loss_curve(preset):
    cfg = config.override(config.preset(preset), {"train": {"epochs": 4, "batch_size": 64}})
    schedule = build.schedule(cfg.schedule)
    data = torch.randn(1280, 1) * 2 + 1
    histories = {}
    for fast in (True, False):
        run_cfg = config.override(cfg, {"train": {"fast": fast}})
        torch.manual_seed(3)
        net = build.denoiser(cfg.model, 1, schedule.num_timesteps)
        trainer = build.trainer(run_cfg, net, schedule, data, data[:100])
        assert (trainer.fast is not None) == fast
        histories[fast] = trainer.run(progress=False)
    for a, b in zip(histories[True], histories[False]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4, nan_ok=True)


@pytest.mark.parametrize("fused", [True, False])
def test_long_gradients_are_clipped_alike_on_both_paths_and_short_ones_left_as_they_are(monkeypatch, fused):
    """``train.max_grad_norm``: at 0.05 (below this model's typical 0.1-0.6) the fast engine
    and autograd clip the same steps to the same length, and train otherwise than unclipped
    (Adam takes a step of about the same length whatever its gradient's: by 0.4% here);
    a limit no step reaches trains exactly as no limit. With torch's fused Adam kernel and
    without it (where a device lacks it)."""
    monkeypatch.setattr(engine, "fused_adam_available", lambda device_type="cpu": fused)
    cfg = config.override(config.preset("default"), {"train": {"epochs": 3, "batch_size": 64}})
    schedule = build.schedule(cfg.schedule)
    data = torch.randn(1280, 1) * 2 + 1

    def losses(fast: bool, limit: float) -> list[float]:
        torch.manual_seed(3)
        net = build.denoiser(cfg.model, 1, schedule.num_timesteps)
        run_cfg = config.override(cfg, {"train": {"fast": fast, "max_grad_norm": limit}})
        trainer = build.trainer(run_cfg, net, schedule, data, data[:100])
        return [h["train_loss"] for h in trainer.run(progress=False)]

    clipped = losses(True, 0.05)
    assert clipped == pytest.approx(losses(False, 0.05), rel=1e-4)
    assert max(abs(a / b - 1) for a, b in zip(clipped, losses(True, 0.0))) > 1e-3
    assert losses(True, 1e9) == losses(True, 0.0)


def test_any_module_trains_through_autograd():
    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(2, 1)

        def forward(self, x, t):
            t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1).expand(len(x), 1)
            return self.linear(torch.cat([x, t / 100], 1))

    cfg = config.override(config.preset("default"), {"train": {"epochs": 2}})
    trainer = build.trainer(cfg, Tiny(), schedules.cosine(100), torch.randn(512, 1), torch.randn(64, 1))
    assert trainer.fast is None
    history = trainer.run(progress=False)
    assert len(history) == 2 and all(h["train_loss"] > 0 for h in history)


def test_divergence_names_epoch_and_learning_rate():
    cfg = config.override(config.preset("default"),
                          {"train": {"epochs": 3}, "model": {"prediction_type": "v"}})
    schedule = build.schedule(cfg.schedule)
    net = build.denoiser(cfg.model, 1, schedule.num_timesteps)
    # Values whose squared error overflows float32, as a runaway learning rate produces.
    trainer = build.trainer(cfg, net, schedule, torch.randn(2048, 1) * 1e25, torch.randn(8, 1))
    with pytest.raises(loop.TrainingDiverged, match=r"epoch \d+, step \d+.*learning rate"):
        trainer.run(progress=False)
