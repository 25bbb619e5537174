"""The voxel field as a frozen scene: a view's weights are one render with kept samples, coalesced
into its matrix over the grid's voxels."""

from __future__ import annotations

import numpy as np

from engine.field.frozen_march import warm_up_in_background
from engine.field.render import RenderedView, render_view
from systems.inverse.ops import ViewWeights, build_view_weights, view_weights_from_rows
from systems.inverse.representation import MaskLayout, ViewSamples

MARCHERS = ("auto", "compiled", "torch", "reference")


def frozen_view_weights(field, camera, *, weight_cutoff: float, min_entry: float, color: bool = True,
                        marcher: str = "auto") -> tuple[ViewWeights, RenderedView]:
    """Render `camera` (components.camera.Camera) once with `field`, keeping samples of weight >=
    weight_cutoff, and build its sparse matrix. A field with a constant background colour hands
    the weight that reaches it (1 - opacity) to the matrix as the backdrop; a field whose backdrop
    is its exit sample keeps that sample in the matrix. Without `color` the samples' colours are
    not looked up (rendered.rgb then holds only the backdrop's share).

    `marcher`: "compiled" renders the view and coalesces each pixel's row in one pass
    (engine/field/frozen_march.py; CPU fields only); "torch" keeps the samples with the torch
    renderer (empty blocks skipped) and coalesces them in ops.build_view_weights; "reference" is
    "torch" with every step generated (the path the others are tested against); "auto" is
    "compiled" on the CPU and "torch" on CUDA."""
    if marcher not in MARCHERS:
        raise ValueError(f"marcher '{marcher}': one of {', '.join(MARCHERS)}")
    if marcher == "auto":
        marcher = "compiled" if field.density.device.type == "cpu" else "torch"
    color_cutoff = 1e-4 if color else float("inf")
    H, W = camera.H, camera.W
    compiled = marcher == "compiled"
    rendered = render_view(field, camera.K, camera.T_world_camera, H, W, keep_weights=not compiled,
                           footprint=compiled, weight_cutoff=weight_cutoff, min_entry=min_entry,
                           skip_blocks=marcher != "reference", color_cutoff=color_cutoff, compiled=compiled)
    backdrop = None if field.background_from_exit else (1.0 - rendered.opacity).clamp(min=0.0).reshape(-1).cpu().numpy()
    if compiled:
        fp = rendered.footprint
        weights = view_weights_from_rows(fp.indptr, fp.voxels, fp.values, H, W, field.resolution, backdrop=backdrop)
    else:
        s = rendered.samples
        weights = build_view_weights(s.ray_ids.cpu(), s.coords.cpu(), s.weights.cpu(), H, W,
                                     field.resolution, backdrop=backdrop, min_entry=min_entry)
    return weights, rendered


class VoxelScene:
    """A frozen VoxelField (engine/field/grid.py) as a FrozenScene (systems/inverse/representation.py):
    its primitives are the voxels of its density grid, flat ids (z * Y + y) * X + x. Made when a
    scene opens for segmentation: on the CPU it starts loading the compiled marcher then."""

    kind = "voxels"

    def __init__(self, field) -> None:
        self.field = field
        self.layout = MaskLayout(tuple(int(n) for n in field.resolution),
                                 field.bbox.detach().cpu().numpy().astype(np.float32), field.space)
        if self.device == "cpu":
            warm_up_in_background()          # the compiled marcher ready before a first click needs it

    @property
    def device(self) -> str:
        return self.field.density.device.type

    def describe(self) -> str:
        return f"{'x'.join(map(str, self.layout.shape))} voxels"

    def view_samples(self, camera, *, weight_cutoff: float, min_entry: float, color: bool = True) -> ViewSamples:
        weights, rendered = frozen_view_weights(self.field, camera, weight_cutoff=weight_cutoff,
                                                min_entry=min_entry, color=color)
        rgb = rendered.rgb.float().cpu().numpy() if color else None                    # [H, W, 3]
        return ViewSamples(weights, rendered.depth.float().cpu().numpy(), rgb)
