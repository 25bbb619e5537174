"""The one in-memory form of every scene format: images, cameras and the region to model.

Camera convention (the only one in the project): `T_world_camera` maps OpenCV camera
coordinates (+X right, +Y down, +Z forward) to world coordinates. Pixel (x, y) = (column, row);
the centre of pixel (x, y) is at (x + 0.5, y + 0.5). Loaders convert once, at the edge.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from engine.errors import UserFacingError


class SceneError(UserFacingError):
    """A scene that cannot be loaded; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class Scene:
    name: str                      # short name shown to users ("builtin", "fern")
    source: str                    # folder the scene was read from
    kind: str                      # "blender" | "llff" | "colmap" | "builtin"
    images: np.ndarray             # [N, H, W, 3] uint8
    K: np.ndarray                  # [N, 3, 3] float32 pixel intrinsics
    T_world_camera: np.ndarray     # [N, 4, 4] float32, OpenCV camera to world
    view_names: tuple[str, ...]    # one unique name per view (the image file stem)
    train_ids: tuple[int, ...]     # views the field and the segmentation learn from
    test_ids: tuple[int, ...]      # held-out views
    bbox: np.ndarray               # [2, 3] float32 world-space min / max of the modelled region
    near: float                    # ray start, in camera depth (z) units
    far: float                     # ray end, in camera depth (z) units
    forward_facing: bool = False   # LLFF-style capture (all cameras look one way)
    background: tuple[float, float, float] | None = None  # known backdrop colour in [0, 1]
    bbox_source: str = "given"     # how the bbox was chosen (train.json records it)
    _hash: list = field(default_factory=list, repr=False, compare=False)

    @property
    def H(self) -> int:
        return int(self.images.shape[1])

    @property
    def W(self) -> int:
        return int(self.images.shape[2])

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def view_index(self, name_or_index: str) -> int:
        """Index of a view given by name or by number; raises SceneError naming the choices."""
        if name_or_index in self.view_names:
            return self.view_names.index(name_or_index)
        if str(name_or_index).isdigit() and int(name_or_index) < len(self):
            return int(name_or_index)
        shown = ", ".join(self.view_names[:5]) + (", ..." if len(self) > 5 else "")
        raise SceneError(
            f"view '{name_or_index}' is not in scene '{self.name}': "
            f"give a view name ({shown}) or an index 0..{len(self) - 1}")

    def content_hash(self) -> str:
        """sha256 of the cameras and image bytes: the scene's identity in checkpoints and recordings."""
        if not self._hash:
            h = hashlib.sha256()
            for array in (self.K, self.T_world_camera, self.bbox):
                h.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
            h.update(np.ascontiguousarray(self.images).tobytes())
            h.update("\n".join(self.view_names).encode())
            self._hash.append(h.hexdigest()[:16])
        return self._hash[0]
