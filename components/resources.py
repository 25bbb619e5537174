"""Segmentation resources (plain data): the scene + field, the mask grid, settings, view cache.

One of each per App. Systems in systems/segmentation, systems/inverse and systems/self_prompt
are their writers; the viewer, export and recording read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(slots=True)
class SceneData:
    scene: object                    # engine.scenes.Scene
    field: object                    # the frozen scene model (engine.field.grid.VoxelField today): read only
                                     # by what draws or meshes that representation (GL presenter, export)
    representation: object = None    # systems.inverse.representation.FrozenScene over `field`: all that the
                                     # segmentation systems use (insert_segmentation sets it)
    device: str = "cpu"              # where the field renders ("cpu" | "cuda")
    field_hash: str = "none"         # identity of the field file (mask_grid.npz field_hash)


@dataclass(slots=True)
class MaskGrid:
    """The SA3D mask state: one channel per object, one value per primitive of the frozen scene
    (MaskLayout.shape: Z, Y, X for the voxel field, the shape of its density grid).

    Final 3D mask of object k: votes[k] > 0. counts[k] = how many views voted on each primitive.
    """
    votes: np.ndarray                # [K, *shape] float32 C-contiguous; voxels: [K, Z, Y, X]
    counts: np.ndarray               # [K, *shape] float32 C-contiguous
    bbox: np.ndarray                 # [2, 3] float32, the box of the primitives
    space: str = "world"

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.votes.shape[1:])


@dataclass(frozen=True)
class SegmentationSettings:
    """The segmentation's settings and the only home of their defaults (the CLI's options read them)."""
    num_prompts: int = 3             # self-prompts per view (reference default; ~20 for irregular objects)
    lambda_first: float = 5.0        # negative-term weight on the user-prompted view
    lambda_others: float = 1.0       # negative-term weight on self-prompted views
    iou_gate: float = 0.5            # views with IoU(SAM, binarised rendered) below are rejected
    views: tuple[int, ...] | None = None   # propagation order; None = the scene's training views
    exclusive: bool = True           # push other objects' channels down inside an object's SAM mask
    weight_cutoff: float = 1e-2      # samples with compositing weight below are dropped (per view)
    min_entry: float = 1e-3          # pixel->voxel matrix entries at or below are dropped
    multimask: bool = True           # 3 candidates on the prompted view (the user picks one)
    stop_after: int = 10             # `segment` stops a pass after this many views rejected in a row (0: never)


@dataclass(slots=True)
class ViewEntry:
    """What a view contributes, computed once per scene and field (shared by all objects)."""
    weights: object                  # systems.inverse.ops.ViewWeights
    depth: np.ndarray                # [H, W] float32 rendered camera depth
    image: np.ndarray                # [H, W, 3] uint8 the image the segmenter sees
    name: str | None                 # scene view name, None for a free camera


@dataclass(slots=True)
class ViewCache:
    """Per-view weights/depth keyed by scene view index, or by a camera key for free cameras."""
    entries: dict = field(default_factory=dict)      # int | str -> ViewEntry
    seconds: float = 0.0                             # total time spent building (or loading) entries
    store: object = None                             # systems.inverse.weights_cache.WeightsCache (disk),
                                                     # None: entries live in memory only
    built: int = 0                                   # entries rendered from the field ...
    loaded: int = 0                                  # ... and read from the store


@dataclass(slots=True)
class SegmenterHandle:
    """The 2D segmenter (systems.sam Segmenter protocol) and the view it was last set to."""
    segmenter: object
    current: object = None           # the ViewCache key of the view set last


@dataclass(slots=True)
class ActiveObject:
    object_id: int | None = None     # prompts without an object_id go here
    next_id: int = 1                 # the id the next created object gets
