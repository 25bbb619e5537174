"""The GL splat renderer: a GaussianCloud drawn as screen-space ellipses, sorted back to front.

Per-Gaussian data lives in float textures (centre + opacity, the 3D covariance, the SH
coefficients) and the object ids in an integer texture. A frame is two passes:
1. project (assets/shaders/splat.project.frag.glsl): one fragment per Gaussian computes its 2D
   centre, extent, conic and colour as engine/splats/project.py does, into three float targets.
   Mesa's llvmpipe runs fragments on every thread and SIMD lane but vertices on one thread, so the
   per-Gaussian work belongs here;
2. draw (splat.vert.glsl / splat.frag.glsl): the Gaussians in back-to-front order (an instance
   buffer sorted by camera depth in numpy when the pose changes), each read from pass 1's texels
   and blended premultiplied (ONE, ONE_MINUS_SRC_ALPHA), so that blending back to front composites
   what the CPU rasteriser composites front to back (tests/test_splat_gl.py holds them together).
Offscreen images are drawn into half-float targets, so that hundreds of blended layers keep
their precision.

Detail while moving: llvmpipe still spends ~1-4 us per primitive on one thread (setup and
binning), so a moving frame draws `stride=k`: 1 / k of the Gaussians with k times the covariance,
which keeps a surface's coverage (area per splat times splats), as point sprites (one vertex per
Gaussian instead of four). The Gaussians are stored in a fixed pseudo-random order, so 1 / k of
them are the first N / k texels and pass 1 only projects those. systems/render/splat_detail.py
picks k and the resolution from frame times. `part=(start, stop)` draws a slice of the sorted
order, so a full-detail frame can be built over several frames (the viewer's refinement).
"""

from __future__ import annotations

import moderngl
import numpy as np
import torch

from engine.splats.project import NEAR, scaled_rotations
from systems.render.gl_raymarch import _set, shader_source
from systems.render.ops import MAX_OBJECTS, OVERLAY_TINT

TEXTURE_WIDTH = 2048          # texels per row of the per-Gaussian textures
INPUT_UNITS = ("center", "cov_a", "cov_b", "sh", "ids")          # pass 1's samplers
PROJECTED = ("screen", "conic", "color")                         # pass 1's targets, pass 2's samplers


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
    """Holds one cloud's textures, its draw order and the splat programs of one GL context."""

    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        self.project_program = ctx.program(vertex_shader=shader_source("fullscreen.vert.glsl"),
                                           fragment_shader=shader_source("splat.project.frag.glsl"))
        self.program = ctx.program(vertex_shader=shader_source("splat.vert.glsl"),
                                   fragment_shader=shader_source("splat.frag.glsl"))
        self.project_vao = ctx.vertex_array(self.project_program, [])
        self._textures: dict[str, moderngl.Texture] = {}
        self._projected: moderngl.Framebuffer | None = None
        self.order = None
        self.vao = None
        self.count = 0                       # Gaussians in front of the camera in the last sort
        self.means = np.zeros((0, 3), np.float32)       # [N, 3] in stored order
        self.permutation = np.zeros(0, np.int64)        # stored texel j holds cloud Gaussian permutation[j]
        self._sorted: tuple | None = None    # (pose bytes, stride) of `sorted`
        self.sorted = np.zeros(0, np.uint32)             # stored indices, back to front
        self._projection: tuple | None = None            # what pass 1's targets hold
        self.set_objects(np.zeros((0, 3), np.uint8), np.zeros(0, bool))

    # ---- data -----------------------------------------------------------------------------
    def load_cloud(self, cloud) -> None:
        """Upload a GaussianCloud: centres + opacity, covariances, SH coefficients, no object ids."""
        n = len(cloud)
        self.permutation = np.random.default_rng(0).permutation(n)
        self.means = cloud.means.numpy().astype(np.float32)[self.permutation]
        cov_a, cov_b = covariances(cloud)
        center = np.concatenate([cloud.means.numpy(), cloud.opacity.numpy()[:, None]], 1)
        for name, values in (("center", center), ("cov_a", cov_a), ("cov_b", cov_b)):
            self._replace(name, texture_rows(values[self.permutation].astype(np.float32), TEXTURE_WIDTH), "f4")
        coeffs = cloud.sh.shape[1] if bool((cloud.sh[:, 1:] != 0).any()) else 1   # view-independent: DC only
        sh_texels = -(-3 * coeffs // 4)
        flat = np.zeros((n, 4 * sh_texels), np.float32)
        flat[:, :3 * coeffs] = cloud.sh[:, :coeffs].reshape(n, -1).numpy()[self.permutation]
        self._replace("sh", texture_rows(flat.reshape(n * sh_texels, 4), TEXTURE_WIDTH), "f4")
        p = self.project_program
        for unit, name in enumerate(INPUT_UNITS):
            _set(p, f"u_{name}", unit)
        _set(p, "u_tex_width", TEXTURE_WIDTH)
        _set(p, "u_sh_coeffs", coeffs)
        _set(p, "u_sh_texels", sh_texels)
        _set(p, "u_tint", OVERLAY_TINT)
        for unit, name in enumerate(PROJECTED):
            _set(self.program, f"u_{name}", unit)
        _set(self.program, "u_tex_width", TEXTURE_WIDTH)
        self.set_object_ids(np.zeros(n, np.uint8))
        if self._projected is not None:
            for texture in self._projected.color_attachments:
                texture.release()
            self._projected.release()
        rows = max(1, -(-n // TEXTURE_WIDTH))
        self._projected = self.ctx.framebuffer(color_attachments=[
            self.ctx.texture((TEXTURE_WIDTH, rows), 4, dtype="f4") for _ in PROJECTED])
        for texture in self._projected.color_attachments:
            texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
        if self.order is not None:
            self.order.release()
            self.vao.release()
        self.order = self.ctx.buffer(reserve=max(4 * n, 4))
        self.vao = self.ctx.vertex_array(self.program, [(self.order, "1u/i", "a_index")])
        self._sorted = self._projection = None

    def set_object_ids(self, ids: np.ndarray) -> None:
        """Object id per Gaussian of the cloud, uint8 [N] (0 = none, k = object k)."""
        ids = np.asarray(ids, np.uint8)
        stored = ids[self.permutation] if len(ids) == len(self.permutation) else ids
        self._replace("ids", texture_rows(stored[:, None], TEXTURE_WIDTH), "u1")
        self._projection = None

    def set_objects(self, colors: np.ndarray, visible: np.ndarray) -> None:
        """Object colours uint8 [K, 3] and visibility bool [K] (object k has id k + 1)."""
        table = np.zeros((MAX_OBJECTS + 1, 4), np.float32)
        k = min(len(colors), MAX_OBJECTS)
        table[1:k + 1, :3] = np.asarray(colors[:k], np.float32) / 255.0
        table[1:k + 1, 3] = np.asarray(visible[:k], np.float32)
        if "u_objects" in self.project_program:
            self.project_program["u_objects"].write(table.tobytes())
        self._projection = None

    def sort(self, T_world_camera: np.ndarray, stride: int = 1) -> int:
        """Order the Gaussians (the first 1 / stride of the stored ones) in front of the camera back
        to front into `sorted`; skipped when neither the pose nor the stride changed. Returns how
        many there are."""
        T = np.asarray(T_world_camera, np.float32)
        if (T.tobytes(), stride) != self._sorted:
            means = self.means[:max(1, len(self.means) // stride)]
            depth = (means - T[:3, 3]) @ T[:3, 2]                                     # camera z
            front = np.flatnonzero(depth > NEAR)
            self.sorted = front[np.argsort(-depth[front])].astype(np.uint32)   # far first
            self._sorted = (T.tobytes(), stride)
        self.count = len(self.sorted)
        return self.count

    def _replace(self, name: str, image: np.ndarray, dtype: str) -> None:
        old = self._textures.pop(name, None)
        if old is not None:
            old.release()
        rows, width, components = image.shape
        texture = self.ctx.texture((width, rows), components, np.ascontiguousarray(image).tobytes(), dtype=dtype)
        texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._textures[name] = texture

    # ---- drawing --------------------------------------------------------------------------
    def _project(self, K: np.ndarray, T: np.ndarray, H: int, W: int, overlay: bool, view_mode: int,
                 selected: int, stride: int) -> None:
        """Pass 1 for the first N / stride stored Gaussians (skipped when its inputs are unchanged)."""
        K = np.asarray(K, np.float32)
        key = (K.tobytes(), T.tobytes(), H, W, bool(overlay), int(view_mode), int(selected), stride)
        if key == self._projection:
            return
        count = max(1, len(self.means) // stride)
        p = self.project_program
        p["u_W"].write(np.ascontiguousarray(T[:3, :3]).tobytes())     # GLSL reads it transposed: R^T
        p["u_origin"].value = tuple(map(float, T[:3, 3]))
        p["u_K"].value = (float(K[0][0]), float(K[1][1]), float(K[0][2]), float(K[1][2]))
        p["u_size"].value = (float(W), float(H))
        p["u_count"].value = count
        _set(p, "u_overlay", bool(overlay))
        _set(p, "u_view_mode", int(view_mode))
        _set(p, "u_selected", int(selected))
        _set(p, "u_area_scale", float(stride))
        for unit, name in enumerate(INPUT_UNITS):
            self._textures[name].use(location=unit)
        bound = self.ctx.fbo
        self._projected.use()
        self.ctx.disable(moderngl.BLEND)
        self.ctx.viewport = (0, 0, TEXTURE_WIDTH, -(-count // TEXTURE_WIDTH))
        self.project_vao.render(moderngl.TRIANGLES, vertices=3)
        bound.use()
        self._projection = key

    def draw(self, K: np.ndarray, T_world_camera: np.ndarray, H: int, W: int, *, overlay: bool = False,
             view_mode: int = 0, selected: int = 0, stride: int = 1, points: bool = False,
             part: tuple[int, int] | None = None) -> int:
        """Blend the splats of an H x W view (intrinsics K [3, 3], pose T_world_camera [4, 4]) over the
        bound framebuffer (viewport 0, 0, W, H), sorting them first when the pose changed; returns how
        many Gaussians lie in front of the camera (the sorted order's length).
        view_mode: 0 scene, 1 object `selected` alone, 2 scene without it; stride > 1: 1 / stride of
        the splats, each stride times larger in area; points: as point sprites; part (start, stop):
        only that slice of the back-to-front order (see the module docstring)."""
        T = np.asarray(T_world_camera, np.float32)
        total = self.sort(T, stride)
        self._project(K, T, H, W, overlay, view_mode, selected, stride)
        start, stop = part or (0, total)
        chunk = self.sorted[start:min(stop, total)]
        if len(chunk) == 0:
            return total
        self.order.write(chunk.tobytes())
        p = self.program
        p["u_size"].value = (float(W), float(H))
        _set(p, "u_points", bool(points))
        for unit, texture in enumerate(self._projected.color_attachments):
            texture.use(location=unit)
        self.ctx.viewport = (0, 0, W, H)
        self.ctx.enable_only(moderngl.BLEND | moderngl.PROGRAM_POINT_SIZE)
        self.ctx.blend_func = moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA
        self.vao.render(moderngl.POINTS if points else moderngl.TRIANGLE_STRIP, vertices=1 if points else 4,
                        instances=len(chunk))
        self.ctx.disable(moderngl.BLEND)
        return total

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
