"""The scene-representation seam: what segmentation asks of a frozen scene, whatever models it.

SA3D's lifting needs one thing per view: how each pixel's modelled weight splits over the scene's
primitives (the voxels of a grid today; Gaussians or points next), i.e. the sparse matrix
A [H*W, U] of systems/inverse/ops.py:ViewWeights over the U primitives the view touches. An
object's mask state is one value per primitive (MaskGrid.votes[k], shaped `MaskLayout.shape`), so
lifting, self-prompting, the IoU gate, 2D masks, outputs and recordings are written once for every
representation. The segmentation systems reach the scene only through `SceneData.representation`
(a `FrozenScene`); what draws or meshes one representation (the GL ray marcher, marching cubes)
reads `SceneData.field`, the model it wraps.

The voxel field is the first implementation: systems/inverse/frozen.py:VoxelScene. Another one
builds its ViewWeights with ops.view_weights_from_rows (rows = pixels, flat primitive ids,
weights; `backdrop` = the weight no primitive holds) and passes itself to insert_segmentation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from components.camera import Camera
from systems.inverse.ops import ViewWeights


@dataclass(frozen=True, eq=False)
class MaskLayout:
    """How an object's mask state is laid out and placed (written into mask_grid.npz with it)."""
    shape: tuple[int, ...]   # the mask state of one object: (Z, Y, X) for a voxel grid, (N,) for N primitives
    bbox: np.ndarray         # [2, 3] float32 the box the primitives live in
    space: str               # "world" | "ndc": the frame of bbox


@dataclass(frozen=True, eq=False)
class ViewSamples:
    """One render of a view by the frozen scene, as the lifting consumes it."""
    weights: ViewWeights     # A [H*W, U]: each pixel's weight on each primitive it sees (+ backdrop)
    depth: np.ndarray        # [H, W] float32 rendered camera depth (self-prompting, the fallback segmenter)
    rgb: np.ndarray | None   # [H, W, 3] float32 in [0, 1] rendered colour; None when not asked for


class FrozenScene(Protocol):
    kind: str                # the representation's name ("voxels"), for panels and notices
    device: str              # where it renders ("cpu" | "cuda"): replays are bit-exact on the same one
    layout: MaskLayout       # the shape and box of an object's mask state

    def describe(self) -> str: ...   # one line for the panel, e.g. "70x173x173 voxels"

    def view_samples(self, camera: Camera, *, weight_cutoff: float, min_entry: float,
                     color: bool = True) -> ViewSamples: ...
    # render `camera` once; samples of compositing weight < weight_cutoff are dropped, matrix
    # entries <= min_entry too; without `color` the colours are not computed (rgb None)


def as_frozen_scene(model) -> FrozenScene:
    """`model` as a FrozenScene: a VoxelField is wrapped in VoxelScene; an object that already
    implements the protocol (has `view_samples`) is returned as is."""
    if hasattr(model, "view_samples"):
        return model
    from engine.field.grid import VoxelField
    from systems.inverse.frozen import VoxelScene

    if isinstance(model, VoxelField):
        return VoxelScene(model)
    raise TypeError(f"{type(model).__name__} is not a scene representation: give a VoxelField or a FrozenScene")
