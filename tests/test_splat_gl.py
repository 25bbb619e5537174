"""The GL splat renderer against the CPU rasteriser, in a headless EGL context."""

import math

import numpy as np
import pytest

from engine.scenes import builtin_render as br
from engine.splats.builtin_gs import generate
from engine.splats.raster import render_splats
from tests import test_gl_raymarch

pytestmark = pytest.mark.gl
ctx = test_gl_raymarch.ctx          # the module-scoped headless EGL context fixture


@pytest.fixture(scope="module")
def scene_splats():
    return generate(96, 0.02)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2) / 255.0 ** 2
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def view(index: int, size: int = 96):
    return br.intrinsics(size).astype(np.float32), br.camera_poses()[index].astype(np.float32)


def cpu_image(cloud, K, T, H, W, background=br.BACKGROUND):
    rgb = render_splats(cloud, K, T, H, W, background=background, with_weights=False).rgb.numpy()
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


@pytest.mark.parametrize("index", [3, 40, 55])
def test_gl_splats_match_the_cpu_rasteriser(ctx, scene_splats, index):
    from systems.render.gl_splats import GLSplatRenderer

    cloud, _ = scene_splats
    K, T = view(index)
    renderer = GLSplatRenderer(ctx)
    renderer.load_cloud(cloud)
    gl = renderer.render_image(K, T, 96, 96, background=br.BACKGROUND)
    cpu = cpu_image(cloud, K, T, 96, 96)
    assert (np.abs(cpu.astype(int) - np.round(np.array(br.BACKGROUND) * 255)).sum(-1) > 30).mean() > 0.3
    assert psnr(gl, cpu) >= 35.0


def test_view_dependent_colour_and_sort_follow_the_camera(ctx):
    """Two Gaussians on the optical axis, the near one red and the far one green, with a degree-1 SH
    band on the far one: the GL image shows the near one in front from both sides."""
    from engine.splats.cloud import SH_C0, from_vertex, vertex_table
    from systems.render.gl_splats import GLSplatRenderer

    sh = np.zeros((2, 4, 3), np.float32)
    sh[0, 0] = (np.array([0.9, 0.1, 0.1]) - 0.5) / SH_C0
    sh[1, 0] = (np.array([0.1, 0.9, 0.1]) - 0.5) / SH_C0
    sh[1, 2] = [0.3, 0.0, 0.0]                                       # the z band: redder seen along +z
    cloud = from_vertex(vertex_table(np.array([[0, 0, 0.5], [0, 0, -0.5]], np.float32), sh,
                                     np.array([0.8, 0.8], np.float32), np.full((2, 3), 0.2, np.float32),
                                     np.tile(np.array([1, 0, 0, 0], np.float32), (2, 1))))
    renderer = GLSplatRenderer(ctx)
    renderer.load_cloud(cloud)
    K = np.array([[60, 0, 32], [0, 60, 24], [0, 0, 1]], np.float32)
    for z, sign in ((-3.0, 1.0), (3.0, -1.0)):
        T = np.diag([1.0, sign, sign, 1.0]).astype(np.float32)         # looking along +Z or -Z
        T[2, 3] = z
        gl = renderer.render_image(K, T, 48, 64)
        cpu = cpu_image(cloud, K, T, 48, 64, background=(0.0, 0.0, 0.0))
        assert psnr(gl, cpu) >= 35.0
        front_is_red = gl[24, 32, 0] > gl[24, 32, 1]
        assert front_is_red == (z > 0)                                 # from +Z the red one is nearer


def test_overlay_and_object_views_follow_the_ids(ctx, scene_splats):
    from systems.render.gl_splats import GLSplatRenderer

    cloud, ids = scene_splats
    K, T = view(3)
    renderer = GLSplatRenderer(ctx)
    renderer.load_cloud(cloud)
    sphere = (ids == 1).astype(np.uint8)                               # object 1: the red sphere
    renderer.set_object_ids(sphere)
    renderer.set_objects(np.array([[0, 0, 255]], np.uint8), np.array([True]))
    truth = np.asarray(br.render_view(br.intrinsics(96), br.camera_poses()[3], 96, 96)[1]) == 1
    plain = renderer.render_image(K, T, 96, 96).astype(int)
    tinted = renderer.render_image(K, T, 96, 96, overlay=True).astype(int)
    alone = renderer.render_image(K, T, 96, 96, view_mode=1, selected=1).astype(int)
    removed = renderer.render_image(K, T, 96, 96, view_mode=2, selected=1).astype(int)
    changed = np.abs(tinted - plain).sum(-1) > 30
    assert changed[truth].mean() > 0.9 and changed[~truth].mean() < 0.05
    assert (tinted[changed][:, 2] > plain[changed][:, 2]).all()       # towards blue
    shown = alone.sum(-1) > 30                                        # black background elsewhere
    assert shown[truth].mean() > 0.9 and shown[~truth].mean() < 0.05
    assert (np.abs(removed - plain).sum(-1) > 30)[truth].mean() > 0.9


def test_a_thinned_moving_frame_keeps_the_surfaces_covered(ctx, scene_splats):
    from systems.render.gl_splats import GLSplatRenderer

    cloud, _ = scene_splats
    K, T = view(40)
    renderer = GLSplatRenderer(ctx)
    renderer.load_cloud(cloud)
    full = renderer.render_image(K, T, 96, 96, background=br.BACKGROUND)
    assert renderer.count > 0.9 * len(cloud)
    thinned = renderer.render_image(K, T, 96, 96, background=br.BACKGROUND, stride=4)
    assert renderer.count < 0.3 * len(cloud)
    sky = np.round(np.array(br.BACKGROUND) * 255)
    holes = (np.abs(thinned.astype(int) - sky).sum(-1) < 8) & (np.abs(full.astype(int) - sky).sum(-1) > 30)
    assert holes.mean() < 0.01                                        # no background seen through
    assert psnr(thinned, full) > 22.0


def test_point_sprites_and_slices_draw_what_the_quads_draw(ctx, scene_splats):
    """A preview's point sprites cover each splat's box (a square of its larger side), so they blend
    the same pixels as the quads; the sorted order drawn in three slices over one target (the
    viewer's refinement) is the one-draw frame."""
    from systems.render.gl_splats import GLSplatRenderer

    cloud, _ = scene_splats
    K, T = view(55)
    renderer = GLSplatRenderer(ctx)
    renderer.load_cloud(cloud)
    quads = renderer.render_image(K, T, 96, 96, background=br.BACKGROUND)
    points = renderer.render_image(K, T, 96, 96, background=br.BACKGROUND, points=True)
    assert psnr(points, quads) >= 45.0
    total = renderer.count
    color = ctx.texture((96, 96), 4, dtype="f2")
    target = ctx.framebuffer(color_attachments=[color])
    target.use()
    target.clear(*br.BACKGROUND, 1.0)
    for part in ((0, total // 5), (total // 5, total // 2), (total // 2, total + 10)):
        assert renderer.draw(K, T, 96, 96, part=part) == total
    sliced = np.frombuffer(target.read(components=3, dtype="f2", alignment=1), np.float16).reshape(96, 96, 3)[::-1]
    assert np.array_equal(np.round(np.clip(sliced.astype(np.float32), 0, 1) * 255).astype(np.uint8), quads)


def test_the_detail_level_adapts_to_the_frame_budget():
    from systems.render.splat_detail import LEVELS, next_level

    assert LEVELS[0] == (1.0, 1)
    pixels_x_splats = [scale * scale / stride for scale, stride in LEVELS]
    assert all(a > b for a, b in zip(pixels_x_splats, pixels_x_splats[1:]))   # each level is cheaper
    assert next_level(0, 0.2, 0.05) == 1 and next_level(3, 0.08, 0.05) == 4
    assert next_level(4, 0.06, 0.05) == 4                                     # within the hysteresis band
    assert next_level(4, 0.01, 0.05) == 3 and next_level(0, 0.0, 0.05) == 0
    assert next_level(len(LEVELS) - 1, 1.0, 0.05) == len(LEVELS) - 1


def test_every_state_answers_every_event_and_refinement_covers_every_splat():
    from systems.render.progressive import Phase
    from systems.render.splat_detail import SplatDetailConfig, SplatProgress

    config = SplatDetailConfig(start_level=3, budget_s=0.05, refine_budget_s=0.08, min_chunk=100)
    for phase in Phase:
        for event in ("moved", "changed", "still"):
            progress = SplatProgress(phase=phase)
            work = progress.plan(event, 1000, config)
            if event != "still":
                assert progress.phase is Phase.MOVING and work.level == 3
            elif phase is Phase.DONE:
                assert progress.phase is Phase.DONE and work.level is None and work.stop == 0
            else:
                assert work.level is None and work.stop > work.start
    progress = SplatProgress()
    progress.plan("moved", 0, config)
    progress.measured(progress.plan("moved", 0, config), 0.2, config)          # too slow: one level coarser
    assert progress.level == 4
    drawn, first = [], True
    while progress.phase is not Phase.DONE:
        work = progress.plan("still", 1000, config)
        assert work.restart == first and work.finished == (progress.phase is Phase.DONE)
        drawn += range(work.start, work.stop)
        progress.measured(work, 0.0004 * (work.stop - work.start), config)     # 0.4 ms a splat
        first = False
    assert drawn == list(range(1000))
    assert progress.seconds_per_splat == pytest.approx(0.0004)
    assert progress.plan("still", 1000, config).stop == 0                     # done: nothing more
    assert progress.plan("changed", 1000, config).level == 4                  # a new preview first
