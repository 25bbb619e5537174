"""The compiled training march against the torch renderer: values, gradients, the pruning record."""

import pytest
import torch

from engine.field.background import BackgroundField
from engine.field.grid import VoxelField
from engine.field.render import render_training_rays


def _field(background=(0.2, 0.5, 0.9), outside=None, resolution=(9, 11, 13), seed=0, **space) -> VoxelField:
    torch.manual_seed(seed)
    field = VoxelField([[-1, -1, -1], [1, 1, 1]], resolution, background=background, near=0.1, far=10.0,
                       outside=outside, **space)
    with torch.no_grad():
        field.density.normal_(-1.0, 3.0)
        field.color.normal_(0.0, 2.0)
        field.density[..., :4] = -30.0                         # a slab of empty space, skipped
    field.update_occupancy(1e-4)
    assert 0.3 < float(field.occupancy.float().mean()) < 0.9
    return field


def _rays(n=168):
    """n rays from one point in front of the box, spread over a cone around +z (camera z of dirs = 1)."""
    spread = torch.rand(n, 2, generator=torch.Generator().manual_seed(1)) - 0.5   # [n, 2]
    dirs = torch.cat([spread, torch.ones(n, 1)], 1)                                 # [n, 3]
    return torch.tensor([0.15, -0.1, -2.5]).expand(n, 3).contiguous(), dirs


def _both(field, origins, dirs, **kwargs):
    """(torch path, compiled path): each its TrainingRays, gradients of a random loss on density
    and colour, and its pruning record."""
    torch.manual_seed(7)
    probe = torch.randn(origins.shape[0], 3)
    results = []
    for compiled in (False, True):
        field.zero_grad(set_to_none=True)
        record = torch.zeros(field.resolution)
        torch.manual_seed(3)                                   # the same jitter draws on both paths
        out = render_training_rays(field, origins, dirs, record, compiled=compiled, **kwargs)
        loss = (probe * out.rgb).sum() + 5.0 * out.alpha_mean
        if out.background_weights is not None:
            loss = loss + out.background_weights[:, -1].sum()
        loss.backward()
        grads = [field.density.grad.clone(), field.color.grad.clone()]
        if field.outside is not None:
            grads.append(field.outside.grid.grad.clone())
        results.append((out, grads, record))
    return results


@pytest.mark.parametrize("background", [(0.2, 0.5, 0.9), None], ids=["constant", "exit-colour"])
def test_values_gradients_and_record_equal_the_torch_renderer(background):
    field = _field(background)
    (ref, ref_grads, ref_record), (out, grads, record) = _both(field, *_rays())
    assert torch.allclose(out.rgb, ref.rgb, atol=2e-5)
    assert float(out.alpha_mean.detach()) == pytest.approx(float(ref.alpha_mean.detach()), rel=1e-5)
    for mine, theirs in zip(grads, ref_grads):
        assert theirs.abs().max() > 1e-3                       # the loss reaches both grids
        assert torch.allclose(mine, theirs, atol=2e-5 * float(theirs.abs().max()))
    assert torch.allclose(record, ref_record, atol=1e-6)
    assert int((record > 0).sum()) > 50


def test_ndc_field_equals_the_torch_renderer():
    """A forward-facing field in NDC space, the camera at the origin (the near plane at z = 1). Every
    sample takes its colour: here one sample's weight sits at the 1e-4 colour cutoff, and the two
    paths' transmittances (a product, a sum of logs) round it to either side."""
    field = _field(space="ndc", ndc_near=1.0, ndc_scale=(1.2, 1.5))
    origins, dirs = _rays()
    (ref, ref_grads, ref_record), (out, grads, record) = _both(field, torch.zeros_like(origins), dirs,
                                                               color_cutoff=0.0)
    assert torch.allclose(out.rgb, ref.rgb, atol=2e-5)
    for mine, theirs in zip(grads, ref_grads):
        assert theirs.abs().max() > 1e-3
        assert torch.allclose(mine, theirs, atol=2e-5 * float(theirs.abs().max()))
    assert torch.allclose(record, ref_record, atol=1e-6) and int((record > 0).sum()) > 50


def test_opaque_samples_have_finite_gradients_and_stopped_rays_change_little():
    field = _field()
    with torch.no_grad():
        field.density[..., 6:8] = 40.0                         # a wall: alpha rounds to 1
    field.update_occupancy(1e-4)
    (ref, ref_grads, _), (out, grads, _) = _both(field, *_rays())
    assert all(torch.isfinite(g).all() for g in grads)
    assert torch.allclose(out.rgb, ref.rgb, atol=2e-5)
    assert torch.allclose(grads[1], ref_grads[1], atol=2e-5 * float(ref_grads[1].abs().max()))
    _, (stopped, _, _) = _both(field, *_rays(), stop_transmittance=1e-4)
    assert torch.allclose(stopped.rgb, ref.rgb, atol=2e-4)
    fewer_samples = float(stopped.alpha_mean.detach()) != pytest.approx(float(ref.alpha_mean.detach()), rel=1e-3)
    assert fewer_samples


def test_unbounded_field_background_gradients_flow_on_both_paths():
    outside = BackgroundField([[-1, -1, -1], [1, 1, 1]], 8, samples=6, half_extent=3.0)
    with torch.no_grad():
        outside.grid.normal_(0.0, 1.0)
    field = _field(background=None, outside=outside)
    (ref, ref_grads, _), (out, grads, _) = _both(field, *_rays())
    assert torch.allclose(out.rgb, ref.rgb, atol=2e-5)
    assert torch.allclose(out.background_weights, ref.background_weights, atol=2e-6)
    for mine, theirs in zip(grads, ref_grads):
        assert torch.allclose(mine, theirs, atol=2e-5 * float(theirs.abs().max()))


def test_result_does_not_depend_on_the_thread_count():
    field = _field()
    origins, dirs = _rays()
    threads = torch.get_num_threads()
    try:
        runs = []
        for n in (1, 2):
            torch.set_num_threads(n)
            runs.append(_both(field, origins, dirs)[1])
    finally:
        torch.set_num_threads(threads)
    (a, grads_a, rec_a), (b, grads_b, rec_b) = runs
    assert torch.equal(a.rgb, b.rgb) and torch.equal(rec_a, rec_b)
    assert all(torch.equal(x, y) for x, y in zip(grads_a, grads_b))
