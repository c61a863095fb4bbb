"""The fast training path for the built-in ``MLP``: explicit forward and backward passes.

For networks this small, autograd's per-operation bookkeeping costs more than the arithmetic.
``FastMLP`` runs the same matrix products into buffers allocated once, writes gradients straight
into each parameter's ``.grad``, and so lets one fused Adam call update everything. Each layer's
weight and bias sit side by side in one matrix [W | b] and every layer input carries a column of
ones, so a single matrix product (the cheapest call torch has) gives a layer's output, and
another its weight and bias gradients together. Its gradients equal autograd's
(``tests/test_engine.py``). Nothing here requires gradients (``flatten_parameters`` moves the
parameters into plain buffers), so the calls need no autograd guard (one per call cost 1% of a
step).

>>> import torch
>>> from simple_diffusion.diffusion.denoisers import MLP, RawTime
>>> net = MLP(1, [16, 16], RawTime())
>>> flat, grad = flatten_parameters(net)
>>> fast = FastMLP(net, flat, grad, batch_size=8)
>>> x, t = torch.randn(8, 1), torch.rand(8) * 1000
>>> torch.allclose(fast.forward(net.inputs(x, t, ones_column=True)), net(x, t))
True
"""

from __future__ import annotations

import functools

import torch

from ..diffusion.denoisers import MLP


def _activate(kind: str, pre: torch.Tensor, out: torch.Tensor) -> None:
    if kind == "relu":
        torch.clamp_min(pre, 0.0, out=out)
    else:
        torch.ops.aten.silu.out(pre, out=out)


def _activation_backward(kind: str, grad: torch.Tensor, pre: torch.Tensor) -> None:
    """Multiply ``grad`` in place by the activation's derivative at ``pre``."""
    if kind == "relu":
        torch.ops.aten.threshold_backward.grad_input(grad, pre, 0.0, grad_input=grad)
    else:
        torch.ops.aten.silu_backward.grad_input(grad, pre, grad_input=grad)


@functools.cache
def fused_adam_available(device_type: str = "cpu") -> bool:
    """Whether this torch has the fused Adam kernel for tensors on ``device_type`` (CPU tensors
    since torch 2.4).

    Probed by calling it once on a tiny buffer: the function exists in older versions too, but
    only for CUDA tensors there.
    """
    one = torch.zeros(1, device=device_type)
    try:
        torch._fused_adam_([one.clone()], [one.clone()], [one.clone()], [one.clone()], [],
                           [torch.ones((), device=device_type)], lr=0.1, beta1=0.9, beta2=0.999,
                           weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False)
    except (AttributeError, RuntimeError, NotImplementedError, TypeError):
        return False
    return True


def supports(net: torch.nn.Module) -> bool:
    """Whether ``net`` is a built-in MLP that the fast path can train."""
    return type(net) is MLP and net.activation in ("relu", "silu")


def layer_blocks(buffer: torch.Tensor, net: MLP) -> list[torch.Tensor]:
    """Views of a flat ``buffer`` as each layer's (out, in + 1) matrix [W | b]."""
    blocks, offset = [], 0
    for layer in net.layers:
        rows, columns = layer.weight.shape[0], layer.weight.shape[1] + 1
        blocks.append(buffer[offset : offset + rows * columns].view(rows, columns))
        offset += rows * columns
    return blocks


def parameter_views(buffer: torch.Tensor, net: MLP) -> list[torch.Tensor]:
    """Views of a flat ``buffer`` shaped as ``net.parameters()`` (weight, bias, weight, ...)."""
    return [view for block in layer_blocks(buffer, net) for view in (block[:, :-1], block[:, -1])]


def flatten_parameters(net: MLP) -> tuple[torch.Tensor, torch.Tensor]:
    """Move every parameter of ``net`` (and its ``.grad``) into views of one flat buffer.

    One buffer lets a single chain of in-place operations update all parameters at once.
    """
    size = sum(p.numel() for p in net.parameters())
    first = next(net.parameters())
    flat = torch.empty(size, dtype=first.dtype, device=first.device)
    grad = torch.zeros_like(flat)
    views = zip(net.parameters(), parameter_views(flat, net), parameter_views(grad, net))
    for p, view, grad_view in views:
        view.copy_(p.detach())
        p.data = view
        p.grad = grad_view
    return flat, grad


class FlatAdam:
    """Adam (Kingma & Ba 2015) on one flat buffer, computed as ``torch.optim.Adam`` does.

    It calls the fused kernel that ``torch.optim.Adam(fused=True)`` uses directly, skipping the
    optimiser's per-step Python bookkeeping, which costs more than the update itself here.
    ``grad`` may hold the gradient times a constant ``gradient_multiplier``: Adam's step does not
    change when gradients and eps scale together, so the caller saves a multiplication per step.
    """

    def __init__(self, param: torch.Tensor, grad: torch.Tensor, lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 gradient_multiplier: float = 1.0, max_grad_norm: float = 0.0):
        self.param, self.grad = param, grad
        self.longest = max_grad_norm * gradient_multiplier
        """The longest ``grad`` a step takes as it is (0: any), in ``grad``'s units."""
        self.param_groups = [{"lr": lr}]  # as torch.optim names it, so callers set lr one way
        self.betas, self.eps = betas, eps * gradient_multiplier
        self.exp_avg = torch.zeros_like(param)
        self.exp_avg_sq = torch.zeros_like(param)
        # The step count lives where the fused kernel reads it: beside the parameters.
        self.step_count = torch.zeros((), dtype=torch.float32, device=param.device)
        self._one = torch.ones((), dtype=torch.float32, device=param.device)
        self._fused = fused_adam_available(param.device.type)

    def step(self) -> None:
        # What a gradient longer than the limit is divided by: exactly 1 below it, so that
        # unclipped steps are unchanged (the fused kernel divides as it reads, as for AMP).
        shrink = (torch.linalg.vector_norm(self.grad).div_(self.longest).clamp_(min=1.0)
                  if self.longest else None)
        self.step_count.add_(self._one)
        beta1, beta2 = self.betas
        if self._fused:
            torch._fused_adam_(
                [self.param], [self.grad], [self.exp_avg], [self.exp_avg_sq], [],
                [self.step_count], lr=self.param_groups[0]["lr"], beta1=beta1, beta2=beta2, weight_decay=0.0,
                eps=self.eps, amsgrad=False, maximize=False, grad_scale=shrink,
            )
            return
        if shrink is not None:
            self.grad.div_(shrink)
        step = float(self.step_count)
        self.exp_avg.lerp_(self.grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(self.grad, self.grad, value=1 - beta2)
        denom = (self.exp_avg_sq.sqrt() / (1 - beta2**step) ** 0.5).add_(self.eps)
        self.param.addcdiv_(self.exp_avg, denom, value=-self.param_groups[0]["lr"] / (1 - beta1**step))

    def state_dict(self) -> dict:
        """The optimiser's state, by reference as ``torch.optim``'s is (callers copy it)."""
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq,
                "step": self.step_count, "lr": self.param_groups[0]["lr"]}

    def load_state_dict(self, state: dict) -> None:
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])
        self.step_count.copy_(state["step"])
        self.param_groups[0]["lr"] = float(state["lr"])


class FastMLP:
    """Forward and backward of an ``MLP`` on fixed-size batches of its first-layer inputs.

    ``flat`` and ``grad`` are the buffers of ``flatten_parameters``; gradients are written into
    ``grad``, overwriting the previous step's.
    """

    def __init__(self, net: MLP, flat: torch.Tensor, grad: torch.Tensor, batch_size: int):
        self.kind = net.activation
        blocks = layer_blocks(flat, net)
        self.blocks_t = [block.t() for block in blocks]
        self.weights = [block[:, :-1] for block in blocks]
        self.grad_blocks = layer_blocks(grad, net)
        widths = [block.shape[0] for block in self.grad_blocks]
        like = {"dtype": flat.dtype, "device": flat.device}
        self.pre = [torch.empty(batch_size, w, **like) for w in widths]
        # Hidden activations with the ones column that multiplies the next layer's bias.
        self.post = [torch.ones(batch_size, w + 1, **like) for w in widths[:-1]]
        self.post_values = [h[:, :-1] for h in self.post]
        self.grad_hidden = [torch.empty(batch_size, w, **like) for w in widths[:-1]]
        self.grad_hidden_t = [g.t() for g in self.grad_hidden]
        self.inputs: torch.Tensor | None = None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """The network's output for first-layer inputs (``net.inputs(..., ones_column=True)``)."""
        self.inputs = inputs
        h = inputs
        last = len(self.blocks_t) - 1
        for i, block_t in enumerate(self.blocks_t):
            torch.mm(h, block_t, out=self.pre[i])
            if i < last:
                _activate(self.kind, self.pre[i], self.post_values[i])
                h = self.post[i]
        return self.pre[last]

    def backward(self, grad_output: torch.Tensor) -> None:
        """Write d(loss)/d(parameter) into the gradient buffer given d(loss)/d(output)."""
        g, g_t = grad_output, grad_output.t()
        for i in range(len(self.blocks_t) - 1, -1, -1):
            h_in = self.inputs if i == 0 else self.post[i - 1]
            torch.mm(g_t, h_in, out=self.grad_blocks[i])
            if i > 0:
                torch.mm(g, self.weights[i], out=self.grad_hidden[i - 1])
                _activation_backward(self.kind, self.grad_hidden[i - 1], self.pre[i - 1])
                g, g_t = self.grad_hidden[i - 1], self.grad_hidden_t[i - 1]
