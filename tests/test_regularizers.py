"""Total variation added to the gradients equals the gradient of the TV loss it stands for."""

import torch

from engine.field.grid import VoxelField
from engine.field.regularizers import add_total_variation_grad


def test_tv_gradient_equals_autograd_of_the_tv_loss():
    torch.manual_seed(0)
    field = VoxelField([[-1, -1, -1], [1, 1, 1]], (5, 6, 7))
    with torch.no_grad():
        field.density.normal_()
        field.color.normal_()
    field.total_variation(0.3, 0.02).backward()
    expected = field.density.grad.clone(), field.color.grad.clone()
    field.density.grad, field.color.grad = None, torch.ones_like(field.color)   # adds to what is there
    add_total_variation_grad(field.density, 0.3)
    add_total_variation_grad(field.color, 0.02)
    assert torch.allclose(field.density.grad, expected[0], atol=1e-6)
    assert torch.allclose(field.color.grad, expected[1] + 1.0, atol=1e-6)
    assert float(expected[0].abs().max()) > 1e-3                       # a gradient that can be wrong


def test_tv_gradient_of_a_channel_range_leaves_the_other_channels():
    grid = torch.randn(1, 4, 4, 4, 4, requires_grad=True)
    (0.5 * sum(torch.diff(grid[:, 1:], dim=d).square().mean() for d in (2, 3, 4))).backward()
    expected = grid.grad.clone()
    grid.grad = None
    add_total_variation_grad(grid, 0.5, slice(1, 4))
    assert torch.allclose(grid.grad, expected, atol=1e-6) and not grid.grad[:, 0].any()
