"""The seed system as the assignment wrote it (shared/seed.md): the speed baseline.

Kept deliberately as the seed behaves, habits included: an ``nn.Module`` trained through autograd
and ``torch.optim.Adam``, per-batch draws of t and noise, a ``.item()`` per batch, validation after
every epoch, and a sampling loop that records gradients. It is a baseline, not a strawman: do not
"fix" it. It shares no code with the package, so a change there cannot move the baseline.
"""

from __future__ import annotations

import torch
from torch import nn

T = 250
BETA = 0.02
ALPHA_BAR = (1 - BETA) ** torch.arange(T + 1, dtype=torch.float32)


class SeedNet(nn.Module):
    """2 -> 16 -> 16 -> 1 with ReLU on (x_t, raw integer t); predicts the noise."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, t], dim=1))


def noisy(x0: torch.Tensor):
    t = torch.randint(1, T, (x0.shape[0], 1))
    eps = torch.randn_like(x0)
    alpha_bar = ALPHA_BAR[t]
    return torch.sqrt(alpha_bar) * x0 + torch.sqrt(1 - alpha_bar) * eps, t.float(), eps


def train(train_x: torch.Tensor, val_x: torch.Tensor, epochs: int, seed: int = 42):
    """The seed's loop: Adam 0.8e-4, batch 64 (last partial batch dropped), validation each epoch."""
    torch.manual_seed(seed)
    model = SeedNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.8e-4)
    loss_fn = nn.MSELoss()
    train_losses, val_losses = [], []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(train_x))
        total, batches = 0.0, 0
        for start in range(0, len(train_x) - 63, 64):
            x0 = train_x[order[start : start + 64]]
            x_t, t, eps = noisy(x0)
            loss = loss_fn(model(x_t, t), eps)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
            batches += 1
        train_losses.append(total / batches)
        model.eval()
        with torch.no_grad():
            x_t, t, eps = noisy(val_x)
            val_losses.append(loss_fn(model(x_t, t), eps).item())
    return model, train_losses, val_losses


def sample(model: SeedNet, n: int) -> torch.Tensor:
    """DDPM ancestral sampling, sigma_t^2 = beta, no noise on the last step; autograd left on."""
    x = torch.randn(n, 1)
    for t in range(T, 0, -1):
        eps = model(x, torch.full((n, 1), float(t)))
        z = torch.randn_like(x) if t > 1 else torch.zeros_like(x)
        x = (x - BETA / torch.sqrt(1 - ALPHA_BAR[t]) * eps) / (1 - BETA) ** 0.5 + BETA**0.5 * z
    return x.detach()
