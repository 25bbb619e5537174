"""The GL splat renderer: a GaussianCloud drawn as instanced screen-space ellipses, sorted back to front.

Per-Gaussian data lives in float textures (centre + opacity, the 3D covariance, the SH
coefficients) and the object ids in an integer texture; the vertex shader (assets/shaders/
splat.vert.glsl) projects each Gaussian as engine/splats/project.py does and the fragment shader
blends its alpha premultiplied (ONE, ONE_MINUS_SRC_ALPHA) over what lies behind. The draw order, an
instance buffer of Gaussian indices, is sorted by camera depth (numpy) whenever the pose changes,
so that blending back to front composites what the CPU rasteriser composites front to back
(tests/test_splat_gl.py holds the two images together). Offscreen images are drawn into a
half-float target, so that hundreds of blended layers keep their precision.

Detail while moving: Mesa's llvmpipe shades vertices on one thread (~0.5-2 us per vertex here), so
200k splats cost a few hundred ms a frame whatever the resolution. `draw(..., stride=k)` draws a
fixed pseudo-random 1/k of the Gaussians (the first N / k of a permutation) with k times the
covariance, which keeps a surface's coverage (area per splat times splats) while the camera moves;
systems/render/splat_detail.py picks k from the frame times.
"""

from __future__ import annotations

import moderngl
import numpy as np
import torch

from engine.splats.project import NEAR, scaled_rotations
from systems.render.gl_raymarch import _set, shader_source
from systems.render.ops import MAX_OBJECTS, OVERLAY_TINT

TEXTURE_WIDTH = 2048          # texels per row of the per-Gaussian textures
TEXTURE_UNITS = ("center", "cov_a", "cov_b", "sh", "ids")


def covariances(cloud) -> tuple[np.ndarray, np.ndarray]:
    """The 3D covariances R S S^T R^T of a cloud as (xx, xy, xz), (yy, yz, zz) float32 [N, 3] each."""
    M = scaled_rotations(cloud.quats, cloud.scales)                               # [N, 3, 3]
    S = (M[:, :, None, :] * M[:, None, :, :]).sum(-1)                             # M M^T [N, 3, 3]
    return (torch.stack([S[:, 0, 0], S[:, 0, 1], S[:, 0, 2]], 1).numpy(),
            torch.stack([S[:, 1, 1], S[:, 1, 2], S[:, 2, 2]], 1).numpy())


def texture_rows(values: np.ndarray, width: int) -> np.ndarray:
    """values [N, C] padded with zero rows to a [rows, width, C] image (row-major, texel i at
    (i % width, i // width))."""
    rows = max(1, -(-len(values) // width))
    padded = np.zeros((rows * width, values.shape[1]), values.dtype)
    padded[:len(values)] = values
    return padded.reshape(rows, width, values.shape[1])


class GLSplatRenderer:
    """Holds one cloud's textures, its draw order and the splat program of one GL context."""

    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        self.program = ctx.program(vertex_shader=shader_source("splat.vert.glsl"),
                                   fragment_shader=shader_source("splat.frag.glsl"))
        self._textures: dict[str, moderngl.Texture] = {}
        self.order = None
        self.vao = None
        self.count = 0
        self.means = np.zeros((0, 3), np.float32)
        self._sorted: tuple[bytes, int] | None = None
        self.permutation = np.zeros(0, np.int64)
        self.set_objects(np.zeros((0, 3), np.uint8), np.zeros(0, bool))

    # ---- data -----------------------------------------------------------------------------
    def load_cloud(self, cloud) -> None:
        """Upload a GaussianCloud: centres + opacity, covariances, SH coefficients, no object ids."""
        n = len(cloud)
        self.means = cloud.means.numpy().astype(np.float32)
        self.permutation = np.random.default_rng(0).permutation(n)
        cov_a, cov_b = covariances(cloud)
        center = np.concatenate([self.means, cloud.opacity.numpy()[:, None]], 1).astype(np.float32)
        for name, values in (("center", center), ("cov_a", cov_a), ("cov_b", cov_b)):
            self._replace(name, texture_rows(values.astype(np.float32), TEXTURE_WIDTH), "f4")
        coeffs = cloud.sh.shape[1] if bool((cloud.sh[:, 1:] != 0).any()) else 1   # view-independent: DC only
        sh_texels = -(-3 * coeffs // 4)
        flat = np.zeros((n, 4 * sh_texels), np.float32)
        flat[:, :3 * coeffs] = cloud.sh[:, :coeffs].reshape(n, -1).numpy()
        self._replace("sh", texture_rows(flat.reshape(n * sh_texels, 4), TEXTURE_WIDTH), "f4")
        p = self.program
        for unit, name in enumerate(TEXTURE_UNITS):
            _set(p, f"u_{name}", unit)
        _set(p, "u_tex_width", TEXTURE_WIDTH)
        _set(p, "u_sh_width", TEXTURE_WIDTH)
        _set(p, "u_sh_coeffs", coeffs)
        _set(p, "u_sh_texels", sh_texels)
        _set(p, "u_tint", OVERLAY_TINT)
        self.set_object_ids(np.zeros(n, np.uint8))
        if self.order is not None:
            self.order.release()
            self.vao.release()
        self.order = self.ctx.buffer(reserve=max(4 * n, 4))
        self.vao = self.ctx.vertex_array(self.program, [(self.order, "1u/i", "a_index")])
        self._sorted = None

    def set_object_ids(self, ids: np.ndarray) -> None:
        """Object id per Gaussian, uint8 [N] (0 = none, k = object k)."""
        self._replace("ids", texture_rows(np.asarray(ids, np.uint8)[:, None], TEXTURE_WIDTH), "u1")

    def set_objects(self, colors: np.ndarray, visible: np.ndarray) -> None:
        """Object colours uint8 [K, 3] and visibility bool [K] (object k has id k + 1)."""
        table = np.zeros((MAX_OBJECTS + 1, 4), np.float32)
        k = min(len(colors), MAX_OBJECTS)
        table[1:k + 1, :3] = np.asarray(colors[:k], np.float32) / 255.0
        table[1:k + 1, 3] = np.asarray(visible[:k], np.float32)
        if "u_objects" in self.program:
            self.program["u_objects"].write(table.tobytes())

    def sort(self, T_world_camera: np.ndarray, stride: int = 1) -> None:
        """Order the Gaussians (1 / stride of them) in front of the camera back to front; skipped when
        neither the pose nor the stride changed."""
        T = np.asarray(T_world_camera, np.float32)
        if (T.tobytes(), stride) == self._sorted:
            return
        subset = self.permutation[:max(1, len(self.permutation) // stride)] if stride > 1 else None
        means = self.means if subset is None else self.means[subset]
        depth = (means - T[:3, 3]) @ T[:3, 2]                                         # camera z
        front = np.flatnonzero(depth > NEAR)
        order = front[np.argsort(-depth[front])]                                      # far first
        order = (order if subset is None else subset[order]).astype(np.uint32)
        self.order.write(order.tobytes())
        self.count = len(order)
        self._sorted = (T.tobytes(), stride)

    def _replace(self, name: str, image: np.ndarray, dtype: str) -> None:
        old = self._textures.pop(name, None)
        if old is not None:
            old.release()
        rows, width, components = image.shape
        texture = self.ctx.texture((width, rows), components, np.ascontiguousarray(image).tobytes(), dtype=dtype)
        texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._textures[name] = texture

    # ---- drawing --------------------------------------------------------------------------
    def draw(self, K: np.ndarray, T_world_camera: np.ndarray, H: int, W: int, *, overlay: bool = False,
             view_mode: int = 0, selected: int = 0, stride: int = 1) -> None:
        """Blend the splats of an H x W view (intrinsics K [3, 3], pose T_world_camera [4, 4]) over the
        bound framebuffer (viewport 0, 0, W, H), sorting them first when the pose changed.
        view_mode: 0 scene, 1 object `selected` alone, 2 scene without it; stride > 1: 1 / stride of
        the splats, each stride times larger in area (see the module docstring)."""
        self.sort(T_world_camera, stride)
        p = self.program
        T = np.asarray(T_world_camera, np.float32)
        p["u_W"].write(np.ascontiguousarray(T[:3, :3]).tobytes())     # GLSL reads it transposed: R^T
        p["u_origin"].value = tuple(map(float, T[:3, 3]))
        p["u_K"].value = (float(K[0][0]), float(K[1][1]), float(K[0][2]), float(K[1][2]))
        p["u_size"].value = (float(W), float(H))
        _set(p, "u_overlay", bool(overlay))
        _set(p, "u_view_mode", int(view_mode))
        _set(p, "u_selected", int(selected))
        _set(p, "u_area_scale", float(stride))
        for unit, name in enumerate(TEXTURE_UNITS):
            self._textures[name].use(location=unit)
        self.ctx.viewport = (0, 0, W, H)
        self.ctx.enable_only(moderngl.BLEND)
        self.ctx.blend_func = moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA
        self.vao.render(moderngl.TRIANGLE_STRIP, vertices=4, instances=self.count)
        self.ctx.disable(moderngl.BLEND)

    def render_image(self, K, T_world_camera, H: int, W: int, *, background=(0.0, 0.0, 0.0),
                     **options) -> np.ndarray:
        """Draw one H x W frame offscreen over `background`; returns uint8 [H, W, 3], row 0 at the top."""
        color = self.ctx.texture((W, H), 4, dtype="f2")
        target = self.ctx.framebuffer(color_attachments=[color])
        try:
            target.use()
            target.clear(*map(float, background), 1.0)
            self.draw(K, T_world_camera, H, W, **options)
            data = np.frombuffer(target.read(components=3, dtype="f2", alignment=1), np.float16)
            image = data.reshape(H, W, 3)[::-1].astype(np.float32)
            return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
        finally:
            target.release()
            color.release()

