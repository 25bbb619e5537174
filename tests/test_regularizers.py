"""Total variation added to the gradients equals the gradient of the TV loss it stands for."""

import pytest
import torch

from engine.field.grid import VoxelField
from engine.field.regularizers import add_total_variation_grad, distortion


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "torch"])
def test_tv_gradient_equals_autograd_of_the_tv_loss(compiled):
    torch.manual_seed(0)
    field = VoxelField([[-1, -1, -1], [1, 1, 1]], (5, 6, 7))
    with torch.no_grad():
        field.density.normal_()
        field.color.normal_()
    field.total_variation(0.3, 0.02).backward()
    expected = field.density.grad.clone(), field.color.grad.clone()
    field.density.grad, field.color.grad = None, torch.ones_like(field.color)   # adds to what is there
    add_total_variation_grad(field.density, 0.3, compiled=compiled)
    add_total_variation_grad(field.color, 0.02, compiled=compiled)
    assert torch.allclose(field.density.grad, expected[0], atol=1e-6)
    assert torch.allclose(field.color.grad, expected[1] + 1.0, atol=1e-6)
    assert float(expected[0].abs().max()) > 1e-3                       # a gradient that can be wrong


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "torch"])
def test_tv_gradient_of_a_channel_range_leaves_the_other_channels(compiled):
    grid = torch.randn(1, 4, 5, 3, 6, requires_grad=True)
    (0.5 * sum(torch.diff(grid[:, 1:], dim=d).square().mean() for d in (2, 3, 4))).backward()
    expected = grid.grad.clone()
    grid.grad = None
    add_total_variation_grad(grid, 0.5, slice(1, 4), compiled=compiled)
    assert torch.allclose(grid.grad, expected, atol=1e-6) and not grid.grad[:, 0].any()


def test_distortion_by_hand():
    # N = 4 bins, midpoints 1/8, 3/8, 5/8, 7/8. All weight in one bin: only the bin's own term,
    # 1 / (3 * 4) = 1/12. Half in the first and half in the last bin: 2 * 1/2 * 1/2 * |7/8 - 1/8|
    # + (1/4 + 1/4) / 12 = 3/8 + 1/24 = 5/12. Spread evenly (1/4 each): sum over ordered pairs of
    # 1/16 |m_i - m_j| = 1/16 * 2 * (3 * 1/4 + 2 * 2/4 + 3/4) = 1/16 * 5 = 5/16, plus 4/16 / 12 = 1/48.
    weights = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.5, 0.0, 0.0, 0.5], [0.25, 0.25, 0.25, 0.25]])
    assert distortion(weights).tolist() == pytest.approx([1 / 12, 5 / 12, 5 / 16 + 1 / 48])


def test_distortion_matches_the_double_sum():
    weights = torch.rand(5, 7, dtype=torch.float64)
    mid = (torch.arange(7, dtype=torch.float64) + 0.5) / 7
    pairs = (weights[:, :, None] * weights[:, None, :] * (mid[:, None] - mid[None, :]).abs()).sum((1, 2))
    assert torch.allclose(distortion(weights), pairs + weights.square().sum(1) / 21)
