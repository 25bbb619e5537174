"""Cameras as plain values. Convention: OpenCV (+X right, +Y down, +Z forward), pixels (x, y)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Camera:
    K: np.ndarray               # [3, 3] float32 pixel intrinsics
    T_world_camera: np.ndarray  # [4, 4] float32 camera-to-world
    H: int
    W: int

    @classmethod
    def of_view(cls, scene, index: int) -> Camera:
        """The camera of view `index` of a Scene."""
        return cls(scene.K[index].astype(np.float32), scene.T_world_camera[index].astype(np.float32),
                   scene.H, scene.W)

    def resized(self, H: int, W: int) -> Camera:
        """The same pose with intrinsics scaled to an H x W image."""
        scale = np.diag([W / self.W, H / self.H, 1.0]).astype(np.float32)
        return Camera(scale @ self.K, self.T_world_camera, H, W)

    def contains(self, x: float, y: float) -> bool:
        """Whether pixel coordinates (x, y) fall inside the image."""
        return 0.0 <= x < self.W and 0.0 <= y < self.H
