"""systems/export/solid.py and axes.py: hand-checked cases of the carving math and the up axis."""

import numpy as np
import pytest
from scipy import sparse

from systems.export import axes, solid
from systems.export.formats import obj_colors


def test_surface_depth_is_where_the_transmittance_halves():
    # entries are centred on their depths: the accumulated weight at an entry's depth counts half of it.
    # pixel 0: 0.2 at depth 1, 0.5 at depth 2, 0.3 to the backdrop. Centred sums: 0.1 at 1, 0.45 at 2:
    #   half is only reached within the deepest entry -> its depth, 2
    # pixel 1: 0.3 at depth 3, 0.7 to the backdrop: never half -> inf
    # pixel 2: 0.4 on voxel 3 (depth 5), 0.6 on voxel 4 (depth 4): centred 0.3 at 4, 0.8 at 5:
    #   0.5 lies 0.2 / 0.5 of the way from 4 to 5 -> 4.4
    # pixel 3: 0.2 at depth 1, 0.8 at depth 2: centred 0.1 at 1, 0.6 at 2 -> 1 + 0.4 / 0.5 = 1.8
    A = sparse.csr_matrix(np.array([[0.2, 0.5, 0.0, 0.0, 0.0, 0.0],
                                    [0.0, 0.0, 0.3, 0.0, 0.0, 0.0],
                                    [0.0, 0.0, 0.0, 0.4, 0.6, 0.0],
                                    [0.2, 0.0, 0.0, 0.0, 0.0, 0.8]], np.float32))
    depth = np.array([1.0, 2.0, 3.0, 5.0, 4.0, 2.0])
    surface, = solid.surface_depths(A, depth, pixel_weight=np.ones(4), shares=(0.5,))
    assert surface[:2].tolist() == [2.0, np.inf]
    assert surface[2:] == pytest.approx([4.4, 1.8])
    # a ray that must be seen through while its transmittance is above 0.9: the 10% point of pixel 3
    assert solid.surface_depths(A, depth, np.ones(4), shares=(0.1,))[0][3] == pytest.approx(1.0)
    # several shares from one sort: each as if asked alone
    tenth, half = solid.surface_depths(A, depth, np.ones(4), shares=(0.1, 0.5))
    assert tenth[3] == pytest.approx(1.0) and np.array_equal(half, surface)


def test_project_finds_the_four_pixels_around_a_point_and_its_depth():
    K = np.array([[10.0, 0, 2.0], [0, 10.0, 2.0], [0, 0, 1]])
    T = np.eye(4)                                                          # camera at the origin
    points = np.array([[0.0, 0.0, 2.0],          # (2, 2): between pixel centres 1.5 and 2.5 -> 1, 2
                       [0.19, 0.0, 1.0],         # x = 3.9: pixels 3 and 3 (clamped), y 1 and 2
                       [0.0, 0.0, -1.0],         # behind the camera
                       [1.0, 0.0, 1.0]])         # x = 12: outside a 4-pixel-wide image
    pixels, depth = solid.project(points, K, T, H=4, W=4)
    assert pixels[0].tolist() == [1 * 4 + 1, 1 * 4 + 2, 2 * 4 + 1, 2 * 4 + 2]
    assert pixels[1].tolist() == [1 * 4 + 3, 1 * 4 + 3, 2 * 4 + 3, 2 * 4 + 3]
    assert (pixels[2:] == -1).all() and depth.tolist() == [2.0, 1.0, -1.0, 1.0]


def test_tally_sorts_voxels_into_free_support_other():
    # one row of 4 pixels; light starts to stop at depth 5 and ends at 5.5, except pixel 3 (the
    # backdrop); pixels 0, 1 in the object's mask
    front, back = np.array([5.0, 5.0, 5.0, np.inf]), np.array([5.5, 5.5, 5.5, np.inf])
    mask = np.array([True, True, False, False])
    pixels = np.array([[0] * 4, [1] * 4, [2] * 4, [2] * 4, [3] * 4, [-1] * 4, [1, 1, 3, 3]])
    depth = np.array([3.0, 7.0, 6.2, 9.0, 5.0, 5.0, 4.9])
    tally = solid.Tally.zeros(7)
    solid.tally_view(tally, pixels, depth, np.full(7, 0.5), np.full(7, 1.0), front, back, mask)
    # 0 in front of the object: seen through, but the light ends on the object: skin; 1 behind it:
    # support; 2 within the band behind the other surface's back (5.5 + 1): other; 3 further behind
    # it: hidden (nothing); 4 in front of the backdrop: free; 5 out of view: nothing; 6 between the
    # object's pixel and the backdrop's, 0.1 in front of the object: within the margin, support
    assert tally.free.tolist() == [0, 0, 0, 0, 1, 0, 0]
    assert tally.skin.tolist() == [1, 0, 0, 0, 0, 0, 0]
    assert tally.support.tolist() == [0, 1, 0, 0, 0, 0, 1]
    assert tally.other.tolist() == [0, 0, 1, 0, 0, 0, 0]


def test_carve_needs_support_and_no_evidence_against():
    tally = solid.Tally(free=np.array([0, 2, 0, 0, 0]), support=np.array([4, 4, 3, 0, 4]),
                        other=np.array([0, 0, 2, 0, 1]), skin=np.array([0, 0, 0, 0, 5]))
    settings = solid.CarveSettings(free_views=2, other_views=2, support_share=0.75)
    # 0 kept; 1 seen through twice; 2 on another surface twice; 3 never supported; 4: 4 of 5 support
    # (seen through by its own pixels: that is for shave_skin)
    assert solid.carve(tally, settings).tolist() == [True, False, False, False, True]


def test_support_plane_is_the_floor_the_object_stands_on():
    rng = np.random.default_rng(1)
    floor = np.c_[rng.uniform(-1, 1, (200, 2)), rng.normal(0.0, 0.002, 200)]     # z ~ 0 all around
    wall = np.c_[rng.uniform(-1, 1, 80), np.full(80, 1.0), rng.uniform(0, 1, 80)]  # spread in height
    up, top = np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, 0.5])
    plane = solid.support_plane(np.r_[floor, wall], up, top, tolerance=0.01)
    assert plane is not None and abs(plane.offset) < 0.002
    assert plane.distance(np.array([[0, 0, 0.3], [0, 0, -0.2]])) == pytest.approx([0.3, -0.2], abs=0.003)
    assert solid.support_plane(floor[:10], up, top, 0.01) is None                 # too few points
    one_side = floor[floor[:, 0] > 0.5]                                           # no floor around it
    assert solid.support_plane(one_side, up, top, 0.01) is None
    assert solid.support_plane(floor, up, np.array([0.0, 0.0, -0.5]), 0.01) is None  # nothing below


def test_clean_mask_fills_cavities_and_drops_specks():
    mask = np.zeros((12, 12, 12), bool)
    mask[1:8, 1:8, 1:8] = True
    mask[3:6, 3:6, 3:6] = False                  # an enclosed cavity
    mask[10, 10, 10] = True                      # a one-voxel speck
    cleaned = solid.clean_mask(mask, speck_voxels=8)
    assert cleaned[3:6, 3:6, 3:6].all() and not cleaned[10, 10, 10] and cleaned.sum() == 7 ** 3


@pytest.mark.parametrize("world_up, file_up, expected", [
    ((0, 0, 1), "y", [[1, 0, 0], [0, 0, 1], [0, -1, 0]]),     # Z-up world -> OBJ: (x, z, -y)
    ((0, 0, 1), "z", np.eye(3)),
    ((0, -1, 0), "y", [[-1, 0, 0], [0, -1, 0], [0, 0, 1]]),   # Y-down world: half a turn about z
    ((0, -1, 0), "z", [[1, 0, 0], [0, 0, 1], [0, -1, 0]]),   # a quarter turn about x
])
def test_up_rotation_takes_the_world_up_to_the_file_up(world_up, file_up, expected):
    R = axes.up_rotation(np.array(world_up, float), file_up)
    assert np.array_equal(R, np.array(expected, float))
    assert np.linalg.det(R) == pytest.approx(1.0) and R @ world_up == pytest.approx(axes.FILE_UP[file_up])


def test_scene_up_is_the_axis_nearest_the_cameras_up():
    from engine.scenes import builtin_render as br

    assert axes.scene_up(br.camera_poses()).tolist() == [0.0, 0.0, 1.0]
    upright = np.tile(np.eye(4), (3, 1, 1))                                   # OpenCV: +Y down
    assert axes.scene_up(upright).tolist() == [0.0, -1.0, 0.0]
    assert axes.describe(axes.up_rotation(np.array([0.0, 0, 1]), "y")) == "file (x, y, z) = world (x, z, -y)"


def test_obj_colours_give_the_byte_back_when_truncated_or_rounded():
    colors = np.arange(256, dtype=np.uint8)[:, None].repeat(3, axis=1)
    written = np.array([float(f"{v:.6f}") for v in obj_colors(colors)[:, 0]])   # as the file holds them
    assert np.array_equal(np.floor(written * 255.0), np.arange(256))
    assert np.array_equal(np.round(written * 255.0), np.arange(256))
    assert np.all(written <= 1.0)


def test_light_that_ends_on_the_object_only_shaves_its_outer_layer():
    # a trained cube whose top is a fog: the silhouettes' hull is the cube grown by a soft layer (a
    # 9^3 block), and views of the cube's own pixels see through its outer layer and, in the fog,
    # through 3 layers more from the top
    hull = np.zeros((11, 11, 11), bool)
    hull[1:10, 1:10, 1:10] = True
    seen_through = hull & ~np.pad(np.ones((7, 7, 7), bool), 2)          # the outer layer
    seen_through[5:9, 2:9, 2:9] = True                                  # the fog under the top
    shaved = solid.shave_skin(hull, seen_through, skin_voxels=1.0)
    assert shaved.sum() == 7 ** 3 and shaved[2:9, 2:9, 2:9].all()      # the cube, its foggy top kept
    assert solid.shave_skin(hull, np.zeros_like(hull), 1.0).sum() == 9 ** 3   # no evidence: the hull
    assert not solid.shave_skin(hull, seen_through, skin_voxels=2.0)[8, 5, 5]   # 2 layers deep: gone


def test_shave_skin_keeps_a_part_as_thin_as_its_skin():
    slab = np.zeros((10, 12, 12), bool)
    slab[3:5, 2:10, 2:10] = True                                        # a sheet two voxels thick
    assert solid.shave_skin(slab, slab.copy(), skin_voxels=1.0).sum() == slab.sum()   # all skin: kept
    slab[3:8, 2:6, 2:6] = True                                          # a block standing on it
    shaved = solid.shave_skin(slab, slab.copy(), skin_voxels=1.0)
    assert shaved[4:7, 3:5, 3:5].all() and not shaved[7, 3, 3]          # the block's core stays, its skin goes
    assert shaved[3:5, 8:10, 8:10].all()                                # the sheet far from it stays
