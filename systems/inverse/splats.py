"""A cloud of 3D Gaussians as a FrozenScene (systems/inverse/representation.py): one mask value per Gaussian.

A view's samples are one render by engine/splats/raster.py: each pixel's (Gaussian, alpha_i T_i)
pairs are its row of the lifting's matrix, the transmittance left at the end (1 - opacity) is the
backdrop's share, so the lifting, self-prompting, the IoU gate and the 2D mask rule run on
Gaussians unchanged (SA3D-GS's per-Gaussian mask).
"""

from __future__ import annotations

import numpy as np

from engine.splats.raster import render_splats
from systems.inverse.ops import view_weights_from_rows
from systems.inverse.representation import MaskLayout, ViewSamples


class GaussianScene:
    """A frozen GaussianCloud (engine/splats/cloud.py) drawn over a constant background colour."""

    kind = "gaussians"

    def __init__(self, cloud, background=(0.0, 0.0, 0.0), bbox: np.ndarray | None = None, splats=None) -> None:
        self.cloud = cloud
        self.background = tuple(background)
        self.splats = splats            # the SplatScene (engine/splats/scene.py) it was opened from, if any
        means = cloud.means.detach().cpu().numpy()
        box = np.stack([means.min(0), means.max(0)]) if bbox is None else np.asarray(bbox)
        self.layout = MaskLayout((len(cloud),), box.astype(np.float32), "world")

    @property
    def device(self) -> str:
        return self.cloud.means.device.type

    def describe(self) -> str:
        return f"{len(self.cloud)} Gaussians (SH degree {self.cloud.sh_degree})"

    def view_samples(self, camera, *, weight_cutoff: float, min_entry: float, color: bool = True) -> ViewSamples:
        H, W = camera.H, camera.W
        r = render_splats(self.cloud, camera.K, camera.T_world_camera, H, W, background=self.background,
                          min_weight=max(weight_cutoff, min_entry), color=color)   # an entry is one sample here
        A = r.weights
        backdrop = (1.0 - r.opacity).clamp(min=0.0)                                    # [H, W]
        weights = view_weights_from_rows(A.indptr, A.indices, A.data, H, W, self.layout.shape,
                                         backdrop=backdrop.reshape(-1).numpy())
        # the backdrop's share sits at the farthest depth, as a voxel field's does at its box's exit:
        # a silhouette's faint rim then lies between the object's depth and the far one
        depth = r.opacity * r.depth + backdrop * r.depth.max()
        return ViewSamples(weights, depth.numpy(), r.rgb.numpy() if color else None)


def open_splat_model(splats, field_arg: str | None) -> tuple[GaussianScene, str]:
    """(the FrozenScene of an opened SplatScene, the sha256 of its .ply: the model's identity in
    mask_grid.npz and the view-weights cache); a --field is refused (the splats are the model)."""
    from engine.io import file_sha256
    from engine.splats.cloud import SplatError

    if field_arg is not None:
        raise SplatError(f"--field {field_arg} is a radiance field, but {splats.scene.name} is a splat scene "
                         "(its Gaussians are the model): drop --field")
    background = splats.scene.background or (0.0, 0.0, 0.0)
    return GaussianScene(splats.cloud, background, splats.scene.bbox, splats), file_sha256(splats.ply)
