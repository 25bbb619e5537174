"""A view's weights from the frozen field: one render with kept samples, coalesced (ops.build_view_weights)."""

from __future__ import annotations

from engine.field.render import RenderedView, render_view
from systems.inverse.ops import ViewWeights, build_view_weights


def frozen_view_weights(field, camera, *, weight_cutoff: float, min_entry: float, color: bool = True,
                        reference: bool = False) -> tuple[ViewWeights, RenderedView]:
    """Render `camera` (components.camera.Camera) once with `field`, keeping samples of weight >=
    weight_cutoff, and build its sparse matrix. A field with a constant background colour hands
    the weight that reaches it (1 - opacity) to the matrix as the backdrop; a field whose backdrop
    is its exit sample keeps that sample in the matrix. Without `color` the samples' colours are
    not looked up (rendered.rgb then holds only the backdrop's share). The render skips empty
    blocks (engine/field/march.py); `reference` marches every step instead (the slow path the
    fast one is tested against)."""
    rendered = render_view(field, camera.K, camera.T_world_camera, camera.H, camera.W,
                           keep_weights=True, weight_cutoff=weight_cutoff, skip_blocks=not reference,
                           color_cutoff=1e-4 if color else float("inf"))
    s = rendered.samples
    backdrop = None if field.background_from_exit else (1.0 - rendered.opacity).clamp(min=0.0).reshape(-1)
    weights = build_view_weights(s.ray_ids.cpu(), s.coords.cpu(), s.weights.cpu(), camera.H, camera.W,
                                 field.resolution, backdrop=backdrop, min_entry=min_entry)
    return weights, rendered
