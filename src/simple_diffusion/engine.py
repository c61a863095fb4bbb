"""The fast training path for the built-in ``MLP``: explicit forward and backward passes.

For networks this small, autograd's per-operation bookkeeping costs more than the arithmetic.
``FastMLP`` runs the same matrix products into buffers allocated once, writes gradients straight
into each parameter's ``.grad``, and so lets one fused Adam call update everything. Its gradients
equal autograd's (``tests/test_engine.py``).

>>> import torch
>>> from simple_diffusion.denoisers import MLP, RawTime
>>> net = MLP(1, [16, 16], RawTime())
>>> flat, grad = flatten_parameters(net)
>>> fast = FastMLP(net, batch_size=8)
>>> z = torch.randn(8, 2)
>>> torch.allclose(fast.forward(z), net.layers[2](torch.relu(net.layers[1](torch.relu(net.layers[0](z))))))
True
"""

from __future__ import annotations

import torch

from .denoisers import MLP


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


def supports(net: torch.nn.Module) -> bool:
    """Whether ``net`` is a built-in MLP that the fast path can train."""
    return type(net) is MLP and net.activation in ("relu", "silu")


def flatten_parameters(net: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Move every parameter of ``net`` (and its ``.grad``) into views of one flat buffer.

    One buffer lets a single chain of in-place operations update all parameters at once.
    """
    params = list(net.parameters())
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    grad = torch.zeros_like(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.data = flat[offset : offset + n].view_as(p)
        p.grad = grad[offset : offset + n].view_as(p)
        offset += n
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
                 gradient_multiplier: float = 1.0):
        self.param, self.grad = param, grad
        self.param_groups = [{"lr": lr}]  # as torch.optim names it, so callers set lr one way
        self.betas, self.eps = betas, eps * gradient_multiplier
        self.exp_avg = torch.zeros_like(param)
        self.exp_avg_sq = torch.zeros_like(param)
        self.step_count = torch.zeros((), dtype=torch.float32)
        self._one = torch.ones((), dtype=torch.float32)
        self._fused = hasattr(torch, "_fused_adam_")

    @torch.no_grad()
    def step(self) -> None:
        self.step_count.add_(self._one)
        beta1, beta2 = self.betas
        if self._fused:
            torch._fused_adam_(
                [self.param], [self.grad], [self.exp_avg], [self.exp_avg_sq], [],
                [self.step_count], lr=self.param_groups[0]["lr"], beta1=beta1, beta2=beta2, weight_decay=0.0,
                eps=self.eps, amsgrad=False, maximize=False,
            )
            return
        step = float(self.step_count)
        self.exp_avg.lerp_(self.grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(self.grad, self.grad, value=1 - beta2)
        denom = (self.exp_avg_sq.sqrt() / (1 - beta2**step) ** 0.5).add_(self.eps)
        self.param.addcdiv_(self.exp_avg, denom, value=-self.param_groups[0]["lr"] / (1 - beta1**step))

    def state_dict(self) -> dict:
        return {"exp_avg": self.exp_avg.clone(), "exp_avg_sq": self.exp_avg_sq.clone(),
                "step": self.step_count.clone(), "lr": self.param_groups[0]["lr"]}

    def load_state_dict(self, state: dict) -> None:
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])
        self.step_count.copy_(state["step"])
        self.param_groups[0]["lr"] = float(state["lr"])


class FastMLP:
    """Forward and backward of an ``MLP`` on fixed-size batches of its first-layer inputs.

    Gradients are written into each parameter's ``.grad`` (views of one flat buffer, see
    ``flatten_parameters``), overwriting the previous step's.
    """

    def __init__(self, net: MLP, batch_size: int):
        self.kind = net.activation
        # Detached views share the parameters' storage without autograd's per-call checks.
        self.weights = [layer.weight.detach() for layer in net.layers]
        self.weights_t = [w.T for w in self.weights]
        self.biases = [layer.bias.detach() for layer in net.layers]
        self.weight_grads = [layer.weight.grad for layer in net.layers]
        self.bias_grads = [layer.bias.grad for layer in net.layers]
        if any(g is None for g in self.weight_grads + self.bias_grads):
            raise ValueError("call flatten_parameters(net) first: gradients go to its buffer")
        widths = [w.shape[0] for w in self.weights]
        dtype = self.weights[0].dtype
        self.pre = [torch.empty(batch_size, w, dtype=dtype) for w in widths]
        self.post = [torch.empty(batch_size, w, dtype=dtype) for w in widths[:-1]]
        self.grad_hidden = [torch.empty(batch_size, w, dtype=dtype) for w in widths[:-1]]
        self.grad_hidden_t = [g.t() for g in self.grad_hidden]
        self.inputs: torch.Tensor | None = None

    @torch.no_grad()
    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """The network's output for first-layer inputs (x_t and time features side by side)."""
        self.inputs = inputs
        h = inputs
        last = len(self.weights) - 1
        for i, (weight_t, bias) in enumerate(zip(self.weights_t, self.biases)):
            torch.addmm(bias, h, weight_t, out=self.pre[i])
            if i < last:
                _activate(self.kind, self.pre[i], self.post[i])
                h = self.post[i]
        return self.pre[last]

    @torch.no_grad()
    def backward(self, grad_output: torch.Tensor) -> None:
        """Write d(loss)/d(parameter) into each ``.grad`` given d(loss)/d(output)."""
        g, g_t = grad_output, grad_output.t()
        for i in range(len(self.weights) - 1, -1, -1):
            h_in = self.inputs if i == 0 else self.post[i - 1]
            torch.mm(g_t, h_in, out=self.weight_grads[i])
            torch.sum(g, 0, out=self.bias_grads[i])
            if i > 0:
                torch.mm(g, self.weights[i], out=self.grad_hidden[i - 1])
                _activation_backward(self.kind, self.grad_hidden[i - 1], self.pre[i - 1])
                g, g_t = self.grad_hidden[i - 1], self.grad_hidden_t[i - 1]
