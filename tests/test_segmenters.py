"""The 2D segmenter protocol: one parametrized suite over every backend, plus each backend's own checks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.errors import UserFacingError
from systems.sam import PromptError, SegmenterError, SegmentResult, make_segmenter
from systems.sam.gt import GtSegmenter

H, W = 48, 64


def shapes_view(H: int = H, W: int = W):
    """A synthetic view: image [H,W,3] uint8, depth [H,W], instance ids [H,W] (1 disc, 2 square, 3 bar
    resting on the square with another colour, same depth: the hard case)."""
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    ids = np.zeros((H, W), np.uint8)
    ids[(xx - W * 0.25) ** 2 + (yy - H * 0.5) ** 2 < (H * 0.22) ** 2] = 1
    ids[(abs(xx - W * 0.68) < W * 0.14) & (abs(yy - H * 0.62) < H * 0.2)] = 2
    ids[(abs(xx - W * 0.68) < W * 0.06) & (abs(yy - H * 0.3) < H * 0.12)] = 3
    colours = np.array([[200, 190, 170], [210, 40, 30], [40, 90, 210], [150, 60, 190]], np.float32)
    shading = 0.7 + 0.3 * (xx / W)[..., None]                     # brightness ramp: shading, not colour
    image = np.clip(colours[ids] * shading, 0, 255).astype(np.uint8)
    depth = np.where(ids == 0, 5.0 + yy / H, np.where(ids == 1, 3.0, 3.5)).astype(np.float32)
    return image, depth, ids


def centre_of(ids: np.ndarray, k: int) -> np.ndarray:
    from scipy import ndimage
    dist = ndimage.distance_transform_edt(ids == k)
    y, x = np.unravel_index(dist.argmax(), ids.shape)
    return np.array([[x + 0.5, y + 0.5]], np.float32)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture(scope="module")
def view():
    return shapes_view()


@pytest.fixture(scope="module")
def gt_dir(tmp_path_factory, view):
    folder = tmp_path_factory.mktemp("gt")
    Image.fromarray(view[2]).save(folder / "v0.png")            # instance-id PNG
    return folder


@pytest.fixture(params=["fallback", "gt", "sam"])
def segmenter(request, view, gt_dir, tmp_path):
    if request.param == "gt":
        seg = make_segmenter("gt", gt_masks=str(gt_dir))
    elif request.param == "fallback":
        seg = make_segmenter("fallback")
    else:
        pytest.importorskip("segment_anything")
        pytest.importorskip("systems.sam.models")
        from systems.sam.models import build_sam
        from systems.sam.sam import SamSegmenter
        seg = SamSegmenter(build_sam("tiny"), model_type="tiny", cache_dir=tmp_path / "emb")
    seg.set_view(view[0], view_name="v0", depth=view[1])
    return seg


def check_result(result: SegmentResult, counts: range) -> None:
    count = len(result.masks)
    assert count in counts and result.masks.shape == (count, H, W) and result.masks.dtype == bool
    assert result.scores.shape == (count,) and result.scores.dtype == np.float32
    assert np.isfinite(result.scores).all()


@pytest.mark.parametrize("multimask", [False, True])
def test_prompts_accepted(segmenter, view, multimask):
    count = range(1, 4) if multimask else range(1, 2)     # multimask: up to 3 distinct candidates
    point = centre_of(view[2], 1)
    check_result(segmenter.predict(points=point, labels=np.array([1]), multimask=multimask), count)
    check_result(segmenter.predict(points=np.concatenate([point, [[2.0, 2.0]]]), labels=np.array([1, 0]),
                                   multimask=multimask), count)
    check_result(segmenter.predict(box=np.array([2, 8, 30, 40]), multimask=multimask), count)
    check_result(segmenter.predict(mask=(view[2] == 2).astype(np.float32), multimask=multimask), count)


@pytest.mark.parametrize("prompt", [
    {"points": np.array([[W + 3.0, 4.0]]), "labels": np.array([1])},   # outside the image
    {"points": np.zeros((0, 2)), "labels": np.zeros(0)},                # nothing at all
    {"points": np.array([[4.0, 4.0]]), "labels": np.array([0])},         # only background
    {"points": np.array([[4.0, 4.0]]), "labels": np.array([1, 0])},      # label count
    {"points": np.array([[4.0, 4.0]]), "labels": np.array([2])},         # label value
    {"box": np.array([30, 8, 2, 40])},                                # inverted box
    {"mask": np.zeros((H + 1, W))},                                   # mask shape
])
def test_bad_prompt_is_one_line_prompt_error(segmenter, prompt):
    with pytest.raises(PromptError) as info:
        segmenter.predict(**prompt)
    assert isinstance(info.value, UserFacingError) and "\n" not in str(info.value)


def test_gt_instance_ids_components_and_negatives(gt_dir, view):
    seg = GtSegmenter(gt_dir)
    seg.set_view(view[0], view_name="v0")
    ids = view[2]
    assert (seg.predict(points=centre_of(ids, 2)).masks[0] == (ids == 2)).all()
    assert (seg.predict(points=centre_of(ids, 3)).masks[0] == (ids == 3)).all()
    assert (seg.predict(mask=(ids == 1) * 0.9).masks[0] == (ids == 1)).all()
    both = seg.predict(points=np.concatenate([centre_of(ids, 2), centre_of(ids, 3)]), labels=[1, 0])
    assert (both.masks[0] == (ids == 2)).all()
    background = seg.predict(points=np.array([[1.0, 1.0]]))
    assert not background.masks.any() and background.scores[0] == 0


def test_gt_box_selects_components_inside(tmp_path, view):
    binary = np.zeros((H, W), np.uint8)
    binary[5:10, 5:10] = binary[30:40, 40:50] = 255               # two blobs of one "object"
    np.save(tmp_path / "v1.npy", binary > 0)
    seg = make_segmenter("gt", gt_masks=str(tmp_path))
    seg.set_view(view[0], view_name="v1")
    out = seg.predict(box=np.array([35, 25, 60, 45]), multimask=True)
    assert out.masks.shape == (3, H, W) and (out.masks[0] == (binary > 0) & (np.arange(W) >= 40)).all()


def test_gt_missing_file_names_it(gt_dir, view):
    seg = GtSegmenter(gt_dir)
    with pytest.raises(SegmenterError, match="nope.png"):
        seg.set_view(view[0], view_name="nope")


def test_gt_resizes_full_resolution_masks(tmp_path, view):
    ids = view[2]
    Image.fromarray(np.kron(ids, np.ones((2, 2), np.uint8))).save(tmp_path / "big.png")
    seg = GtSegmenter(tmp_path)
    seg.set_view(view[0], view_name="big")
    assert (seg.predict(points=centre_of(ids, 1)).masks[0] == (ids == 1)).all()


def test_fallback_one_click_per_object(view):
    seg = make_segmenter("fallback")
    image, depth, ids = view
    seg.set_view(image, depth=depth)
    for k in (1, 2, 3):
        assert iou(seg.predict(points=centre_of(ids, k)).masks[0], ids == k) >= 0.85, k


def test_fallback_mask_prior_refines(view):
    from scipy import ndimage
    image, depth, ids = view
    seg = make_segmenter("fallback")
    seg.set_view(image, depth=depth)
    rough = ndimage.binary_dilation(ids == 1, iterations=3).astype(np.float32) * 0.8   # a blurry render
    assert iou(seg.predict(mask=rough).masks[0], ids == 1) >= 0.85


def test_fallback_grows_one_click_over_a_textured_object_of_one_colour():
    """An orange square with dark stripes (lightness edges, the same hue: petals, a patterned box)
    on green: the colour core seeds the whole square, not only the stripe under the click."""
    yy, xx = np.mgrid[0:H, 0:W]
    square = (abs(xx - W / 2) < W * 0.17) & (abs(yy - H / 2) < H * 0.22)    # 15% of the image
    image = np.where(square[..., None], [235, 110, 50], [50, 120, 60]).astype(np.float32)
    stripes = square & (xx % 6 < 2)
    image[stripes] *= 0.45                                         # much darker, same chromaticity
    seg = make_segmenter("fallback")
    seg.set_view(image.astype(np.uint8))
    mask = seg.predict(points=np.array([[W / 2 + 1.5, H / 2]], np.float32), multimask=False).masks[0]
    assert iou(mask, square) >= 0.85


def test_fallback_builtin_scene_views():
    br = pytest.importorskip("engine.scenes.builtin_render")
    seg = make_segmenter("fallback")
    poses, size, ious = br.camera_poses(), 96, []
    for v in (0, 30, 50):
        image, ids, depth = br.render_view(br.intrinsics(size), poses[v], size, size, supersample=1)
        seg.set_view(image, depth=depth)
        for k in range(1, int(ids.max()) + 1):
            if (ids == k).sum() >= 30:
                ious.append(iou(seg.predict(points=centre_of(ids, k)).masks[0], ids == k))
    assert np.mean(np.array(ious) >= 0.85) >= 0.7, ious


def test_auto_falls_back_with_notice(tmp_path, monkeypatch):
    monkeypatch.delenv("SA3D_SAM_CHECKPOINT", raising=False)
    seg = make_segmenter("auto", cache_dir=tmp_path)
    assert seg.name == "fallback" and "sam_hq_vit_tiny.pth" in seg.notice and "\n" not in seg.notice


def test_explicit_missing_checkpoint_is_one_line(tmp_path):
    for kind in ("auto", "sam"):
        with pytest.raises(SegmenterError, match="dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth"):
            make_segmenter(kind, checkpoint=str(tmp_path / "sam_vit_l_0b3195.pth"), cache_dir=tmp_path)


def test_unknown_kind():
    with pytest.raises(SegmenterError, match="unknown segmenter"):
        make_segmenter("magic")
