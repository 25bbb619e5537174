"""Sample generation (engine/field/march.py): block skipping gives the reference's samples exactly;
the compiled marcher of frozen fields (engine/field/frozen_march.py) renders what the torch one does."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.field import frozen_march
from engine.field.background import BackgroundField
from engine.field.grid import VoxelField
from engine.field.march import BLOCK_STEPS, _box_occupied
from engine.field.render import render_rays, render_rays_compiled
from engine.math.rays import camera_rays


def _sparse_field(space: str, seed: int = 0) -> VoxelField:
    """A 40x30x20 field with a few dense blobs (random density), its occupancy from the density."""
    gen = torch.Generator().manual_seed(seed)
    kwargs = {"ndc_near": 1.0, "ndc_scale": (1.2, 1.5)} if space == "ndc" else {}
    bbox = [[-1, -1, -1], [1, 1, 1]] if space == "ndc" else [[-1, -1, 1], [1, 1, 3]]
    field = VoxelField(bbox, (20, 30, 40), space=space, **kwargs)
    with torch.no_grad():
        field.density.fill_(-40.0)
        for _ in range(6):
            z, y, x = (int(torch.randint(2, n - 6, (1,), generator=gen)) for n in (20, 30, 40))
            field.density[0, 0, z:z + 4, y:y + 5, x:x + 6] = torch.rand(4, 5, 6, generator=gen) * 6 - 1
        field.color.normal_(generator=gen)
    field.update_occupancy(1e-4)
    assert 0.02 < field.occupancy.float().mean() < 0.5
    return field


def _rays(H=24, W=32):
    K = np.array([[30.0, 0, W / 2], [0, 30.0, H / 2], [0, 0, 1]], np.float32)
    T = np.eye(4, dtype=np.float32)
    T[:3, 3] = [0.1, -0.05, -0.5]
    return camera_rays(K, T, H, W)


@pytest.mark.parametrize("space", ["world", "ndc"])
def test_block_skipping_generates_exactly_the_reference_samples(space):
    field = _sparse_field(space)
    origins, dirs = _rays()
    with torch.no_grad():
        ref = render_rays(field, origins, dirs, keep_weights=True, weight_cutoff=0.0, skip_blocks=False)
        fast = render_rays(field, origins, dirs, keep_weights=True, weight_cutoff=0.0)
    assert ref.coords.shape[0] > 1000                      # the rays do cross the blobs
    assert torch.equal(ref.samples.ray_ids, fast.samples.ray_ids)
    assert torch.equal(ref.coords, fast.coords)
    assert torch.allclose(ref.rgb, fast.rgb, atol=1e-6) and torch.allclose(ref.depth, fast.depth, atol=1e-5)


def test_jittered_training_rays_get_the_reference_samples_and_gradients():
    field = _sparse_field("world", seed=1)
    origins, dirs = _rays(8, 10)
    grads = []
    for skip in (False, True):
        torch.manual_seed(3)
        field.zero_grad()
        out = render_rays(field, origins, dirs, jitter=True, skip_blocks=skip)
        out.rgb.sum().backward()
        grads.append(field.density.grad.clone())
    assert grads[0].abs().sum() > 0 and torch.allclose(grads[0], grads[1], atol=1e-6)


def test_box_lookup_matches_a_brute_force_count():
    field = _sparse_field("world", seed=4)
    gen = torch.Generator().manual_seed(5)
    a, b = torch.rand(500, 3, generator=gen) * 2.2 - 1.1, torch.rand(500, 3, generator=gen) * 0.4 - 0.2
    lo, hi = torch.minimum(a, a + b), torch.maximum(a, a + b)
    Z, Y, X = field.resolution
    size = torch.tensor([X - 1, Y - 1, Z - 1], dtype=torch.float32)
    first = ((lo.clamp(-1, 1) + 1) / 2 * size).round().long()
    last = ((hi.clamp(-1, 1) + 1) / 2 * size).round().long()
    occ = field.occupancy
    brute = torch.tensor([bool(occ[a[2]:b[2] + 1, a[1]:b[1] + 1, a[0]:b[0] + 1].any())
                          for a, b in zip(first, last)])
    assert brute.any() and not brute.all()
    assert torch.equal(_box_occupied(field, lo, hi), brute)


def test_blocks_shorter_than_a_block_and_rays_that_miss():
    field = _sparse_field("world", seed=6)
    origins, dirs = _rays(4, 4)
    dirs[0] = torch.tensor([5.0, 5.0, 1.0])               # misses the box
    with torch.no_grad():
        short = render_rays(field, origins, dirs, far=1.0 + BLOCK_STEPS * field.step_size / 3)
        ref = render_rays(field, origins, dirs, far=1.0 + BLOCK_STEPS * field.step_size / 3, skip_blocks=False)
    assert torch.allclose(short.rgb, ref.rgb, atol=1e-6)


def _unbounded_field() -> VoxelField:
    """_sparse_field's blobs in a world box with a background grid (a room) around it."""
    field = _sparse_field("world", seed=7)
    outside = BackgroundField(field.bbox.tolist(), 12, samples=8)
    with torch.no_grad():
        outside.grid.normal_(generator=torch.Generator().manual_seed(8))
    unbounded = VoxelField(field.bbox.tolist(), field.resolution, outside=outside)
    unbounded.load_state_dict(field.state_dict(), strict=False)
    unbounded.occupancy = field.occupancy.clone()
    return unbounded


@pytest.mark.parametrize("kind", ["box", "ndc", "unbounded"])
def test_the_compiled_marcher_renders_what_the_torch_renderer_does(kind):
    field = {"box": lambda: _sparse_field("world"), "ndc": lambda: _sparse_field("ndc"),
             "unbounded": _unbounded_field}[kind]()
    assert field.kind == kind
    origins, dirs = _rays()
    with torch.no_grad():
        ref = render_rays(field, origins, dirs, skip_blocks=False)
    out, rows = render_rays_compiled(field, origins, dirs)
    assert rows is None and float(ref.opacity.max()) > 0.5       # some rays are nearly opaque
    assert (out.rgb - ref.rgb).abs().max() <= 1e-3
    assert (out.opacity - ref.opacity).abs().max() <= 1e-3
    assert ((out.depth - ref.depth).abs() / ref.depth.abs().clamp(min=1.0)).max() <= 1e-3


@pytest.mark.parametrize("space", ["world", "ndc"])
def test_the_footprint_is_the_kept_samples_trilinear_weights_summed_per_voxel(space):
    field = _sparse_field(space, seed=2)
    origins, dirs = _rays(12, 16)
    cutoff, min_entry = 1e-3, 1e-4
    with torch.no_grad():
        ref = render_rays(field, origins, dirs, keep_weights=True, weight_cutoff=cutoff, skip_blocks=False).samples
    _, rows = render_rays_compiled(field, origins, dirs, footprint=True, weight_cutoff=cutoff, min_entry=min_entry)
    Z, Y, X = field.resolution
    expected = torch.zeros(origins.shape[0], Z * Y * X, dtype=torch.float64)   # by hand: 8 corners each
    size = torch.tensor([X, Y, Z], dtype=torch.float64)
    pos = (ref.coords.double().clamp(-1, 1) + 1) / 2 * (size - 1)
    low = torch.minimum(pos.floor(), size - 2)
    for corner in range(8):
        bits = torch.tensor([corner & 1, corner >> 1 & 1, corner >> 2 & 1], dtype=torch.float64)
        frac = pos - low
        weight = torch.where(bits.bool(), frac, 1 - frac).prod(1)
        idx = (low + bits).long()
        expected.index_put_((ref.ray_ids, (idx[:, 2] * Y + idx[:, 1]) * X + idx[:, 0]), ref.weights * weight,
                            accumulate=True)
    expected[expected <= min_entry] = 0
    got = torch.zeros_like(expected)
    row_of = np.repeat(np.arange(origins.shape[0]), np.diff(rows.indptr))
    voxels = torch.from_numpy(rows.voxels.astype(np.int64))
    got[torch.from_numpy(row_of), voxels] = torch.from_numpy(rows.values).double()
    assert int((expected > 0).sum()) > 500
    assert (got - expected).abs().max() <= 1e-5
    for r in range(origins.shape[0]):                                # one entry per voxel, ascending
        assert np.all(np.diff(rows.voxels[rows.indptr[r]:rows.indptr[r + 1]]) > 0)


def test_the_compiled_result_does_not_depend_on_the_thread_count(monkeypatch):
    field = _sparse_field("ndc", seed=3)
    origins, dirs = _rays(96, 128)
    runs = []
    for threads, chunk in ((1, frozen_march.CHUNK_RAYS), (3, 1000)):
        monkeypatch.setattr(frozen_march, "THREADS", threads)
        monkeypatch.setattr(frozen_march, "CHUNK_RAYS", chunk)
        frozen_march._pool.cache_clear()
        out, rows = render_rays_compiled(field, origins, dirs, footprint=True)
        runs.append((out.rgb, out.depth, rows.indptr, rows.voxels, rows.values))
    frozen_march._pool.cache_clear()
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(*runs))


def test_the_footprint_scratch_comes_back_clean_for_the_next_view():
    field = _sparse_field("world", seed=4)
    origins, dirs = _rays(24, 32)
    first = render_rays_compiled(field, origins, dirs, footprint=True)[1]
    render_rays_compiled(field, origins.flip(0), dirs.flip(0), footprint=True)   # other rays, same scratch
    again = render_rays_compiled(field, origins, dirs, footprint=True)[1]
    assert first.values.size > 1000
    assert np.array_equal(first.indptr, again.indptr) and np.array_equal(first.voxels, again.voxels)
    assert np.array_equal(first.values, again.values)
    kept = []
    while not frozen_march._SCRATCH.empty():
        kept.append(frozen_march._SCRATCH.get())
    assert kept and all(not touched.any() for touched, _ in kept)     # no voxel left marked
    for scratch in kept:
        frozen_march._SCRATCH.put(scratch)


def test_the_warm_up_compiles_the_signature_every_render_uses():
    thread = frozen_march.warm_up_in_background()
    assert frozen_march.warm_up_in_background() is thread                 # once per process
    thread.join(timeout=300)
    assert not thread.is_alive() and len(frozen_march._march_chunk.signatures) == 1
    field = _sparse_field("ndc", seed=5)
    origins, dirs = _rays(8, 8)
    render_rays_compiled(field, origins, dirs, footprint=True)
    render_rays_compiled(field, origins, dirs, color_cutoff=float("inf"))
    assert len(frozen_march._march_chunk.signatures) == 1                # nothing compiled at the click


@pytest.mark.parametrize("delay", [0.0, 0.1, 0.2, 0.3])
def test_a_process_that_exits_during_the_warm_up_ends_with_its_own_status(delay):
    """An early one-line error (exit 2) while the warm-up is inside torch must not abort the process
    (a daemon thread there ends it with SIGABRT: 'terminate called without an active exception')."""
    script = ("import sys, time\n"
              "from engine.field.frozen_march import warm_up_in_background\n"
              f"warm_up_in_background(); time.sleep({delay}); sys.exit(2)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-500:]
