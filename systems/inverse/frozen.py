"""A view's weights from the frozen field: one render with kept samples, coalesced into its matrix."""

from __future__ import annotations

from engine.field.render import RenderedView, render_view
from systems.inverse.ops import ViewWeights, build_view_weights, view_weights_from_rows

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
    backdrop = None if field.background_from_exit else (1.0 - rendered.opacity).clamp(min=0.0).reshape(-1)
    if compiled:
        fp = rendered.footprint
        weights = view_weights_from_rows(fp.indptr, fp.voxels, fp.values, H, W, field.resolution, backdrop=backdrop)
    else:
        s = rendered.samples
        weights = build_view_weights(s.ray_ids.cpu(), s.coords.cpu(), s.weights.cpu(), H, W,
                                     field.resolution, backdrop=backdrop, min_entry=min_entry)
    return weights, rendered
