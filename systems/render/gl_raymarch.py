"""The GL ray marcher: a VoxelField and its object ids as 3D textures, drawn by a fragment shader.

The shader (assets/shaders/raymarch.frag.glsl) mirrors the torch renderer's sampling and
compositing; tests/test_gl_raymarch.py holds the two within 35 dB PSNR. This module owns GL
objects only; what goes into the textures is computed by systems/render/ops.py.
"""

from __future__ import annotations

from pathlib import Path

import moderngl
import numpy as np

from systems.render.ops import MAX_OBJECTS, OVERLAY_TINT, VolumeArrays, block_distance, object_ids, voxel_flags

SHADERS = Path(__file__).resolve().parents[2] / "assets" / "shaders"
BLOCK = 4                 # voxels per side of an empty-space-skipping block
MASK_THRESHOLD = 0.5      # a pixel shows its object's colour where the rendered mask M >= this
TAIL = 0.02               # a ray stops at transmittance T < TAIL, T going to its last colour
TEXTURE_UNITS = ("volume", "flags", "blocks", "outside")   # sampler u_<name> reads texture unit i


def shader_source(name: str) -> str:
    """The text of assets/shaders/<name>."""
    return (SHADERS / name).read_text()


def _set(program: moderngl.Program, name: str, value) -> None:
    """Set a uniform if the compiler kept it (unused uniforms are optimised away)."""
    if name in program:
        program[name].value = value


class GLRayMarcher:
    """Holds the volume textures and the two programs (ray march, blit) of one GL context."""

    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        vert = shader_source("fullscreen.vert.glsl")
        self.program = ctx.program(vertex_shader=vert, fragment_shader=shader_source("raymarch.frag.glsl"))
        self.blit_program = ctx.program(vertex_shader=vert, fragment_shader=shader_source("blit.frag.glsl"))
        self.vao = ctx.vertex_array(self.program, [])
        self.blit_vao = ctx.vertex_array(self.blit_program, [])
        self.volume: VolumeArrays | None = None
        self._textures: dict[str, moderngl.Texture3D] = {}
        self.set_objects(np.zeros((0, 3), np.uint8), np.zeros(0, bool))

    # ---- data -----------------------------------------------------------------------------
    def load_volume(self, volume: VolumeArrays) -> None:
        """Upload colour + density, the block distances and empty object ids for `volume`."""
        self.volume = volume
        Z, Y, X = volume.resolution
        blocks = block_distance(volume.occupancy, BLOCK)                  # [Zb, Yb, Xb]
        self._replace("volume", (X, Y, Z), 4, volume.rgba, "f1" if volume.encoded_u8 else "f2", linear=True)
        self._replace("blocks", blocks.shape[::-1], 1, blocks, "f1", linear=False)
        outside = volume.outside
        if outside is not None:
            R = outside.resolution
            self._replace("outside", (R, R, R), 4, outside.rgba, "f2", linear=True)
        else:                                   # a placeholder: every sampler needs a texture
            self._replace("outside", (2, 2, 2), 4, np.zeros((2, 2, 2, 4), np.float16), "f2", linear=True)
        self.set_object_ids(object_ids(None, volume.resolution))
        p = self.program
        for unit, name in enumerate(TEXTURE_UNITS):
            _set(p, f"u_{name}", unit)
        _set(p, "u_encoded_u8", volume.encoded_u8)
        _set(p, "u_raw_lo", volume.raw_lo)
        _set(p, "u_raw_hi", volume.raw_hi)
        _set(p, "u_bmin", tuple(map(float, volume.bbox[0])))
        _set(p, "u_bmax", tuple(map(float, volume.bbox[1])))
        _set(p, "u_res", (float(X), float(Y), float(Z)))
        _set(p, "u_block", BLOCK)
        _set(p, "u_step", volume.step_size)
        _set(p, "u_shift", volume.density_shift)
        _set(p, "u_scale", volume.density_scale)
        _set(p, "u_near", volume.near)
        _set(p, "u_far", min(volume.far, 1e30))
        _set(p, "u_ndc", volume.space == "ndc")
        _set(p, "u_ndc_near", volume.ndc_near)
        _set(p, "u_ndc_scale", tuple(map(float, volume.ndc_scale)))
        _set(p, "u_background", tuple(map(float, volume.background)))
        _set(p, "u_background_from_exit", volume.background_from_exit)
        _set(p, "u_unbounded", outside is not None)
        if outside is not None:
            _set(p, "u_bg_centre", tuple(map(float, outside.centre)))
            _set(p, "u_bg_half", tuple(map(float, outside.half_extent)))
            _set(p, "u_bg_res", float(outside.resolution))
            _set(p, "u_bg_samples", outside.samples)
            _set(p, "u_bg_shift", outside.density_shift)
            _set(p, "u_bg_scale", outside.density_scale)
        _set(p, "u_mask_threshold", MASK_THRESHOLD)
        _set(p, "u_tint", OVERLAY_TINT)
        _set(p, "u_tail", TAIL)

    def set_object_ids(self, ids: np.ndarray) -> None:
        """Upload object ids uint8 [Z, Y, X] (0 = none) with the occupancy and group sizes as the
        voxel flags."""
        flags = voxel_flags(self.volume.occupancy, ids, self.volume.groups)   # [Z, Y, X, 4]
        Z, Y, X = ids.shape
        if "flags" in self._textures and self._textures["flags"].size == (X, Y, Z):
            self._textures["flags"].write(flags.tobytes())
        else:
            self._replace("flags", (X, Y, Z), 4, flags, "f1", linear=False)

    def set_objects(self, colors: np.ndarray, visible: np.ndarray) -> None:
        """Object colours uint8 [K, 3] and visibility bool [K] (object k has id k + 1)."""
        table = np.zeros((MAX_OBJECTS + 1, 4), np.float32)                # [32, 4]
        k = min(len(colors), MAX_OBJECTS)
        table[1:k + 1, :3] = np.asarray(colors[:k], np.float32) / 255.0
        table[1:k + 1, 3] = np.asarray(visible[:k], np.float32)
        if "u_objects" in self.program:
            self.program["u_objects"].write(table.tobytes())

    def _replace(self, name, size, components, data, dtype, *, linear: bool) -> None:
        old = self._textures.pop(name, None)
        if old is not None:
            old.release()
        texture = self.ctx.texture3d(size, components, np.ascontiguousarray(data).tobytes(), dtype=dtype)
        texture.filter = (moderngl.LINEAR, moderngl.LINEAR) if linear else (moderngl.NEAREST, moderngl.NEAREST)
        texture.repeat_x = texture.repeat_y = texture.repeat_z = False
        self._textures[name] = texture

    # ---- drawing --------------------------------------------------------------------------
    def draw(self, K: np.ndarray, T_world_camera: np.ndarray, H: int, W: int, *, overlay: bool = False,
             view_mode: int = 0, selected: int = 0, scissor: tuple[int, int, int, int] | None = None) -> None:
        """Ray-march an H x W image with intrinsics K [3, 3] and pose T_world_camera [4, 4] into the
        bound framebuffer (viewport 0, 0, W, H). scissor = (x, y, w, h) in GL pixels limits the
        pixels drawn. view_mode: 0 scene, 1 object `selected` alone, 2 scene without it."""
        p = self.program
        p["u_size"].value = (float(W), float(H))
        p["u_K_inv"].write(np.linalg.inv(np.asarray(K, np.float64)).astype(np.float32).T.tobytes())
        T = np.asarray(T_world_camera, np.float32)
        p["u_R"].write(np.ascontiguousarray(T[:3, :3].T).tobytes())      # GLSL mat3 is column-major
        p["u_origin"].value = tuple(map(float, T[:3, 3]))
        _set(p, "u_overlay", bool(overlay))
        _set(p, "u_view_mode", int(view_mode))
        _set(p, "u_selected", int(selected))
        for unit, name in enumerate(TEXTURE_UNITS):
            self._textures[name].use(location=unit)
        self.ctx.viewport = (0, 0, W, H)
        self.ctx.scissor = scissor
        self.vao.render(moderngl.TRIANGLES, vertices=3)
        self.ctx.scissor = None

    def blit(self, texture: moderngl.Texture, viewport: tuple[int, int, int, int]) -> None:
        """Draw a 2D texture over `viewport` (x, y, w, h) of the bound framebuffer, linearly filtered."""
        texture.use(location=0)
        self.blit_program["u_image"].value = 0
        self.ctx.viewport = viewport
        self.blit_vao.render(moderngl.TRIANGLES, vertices=3)

    def render_image(self, K, T_world_camera, H: int, W: int, **options) -> np.ndarray:
        """Ray-march one H x W frame offscreen; returns uint8 [H, W, 3], row 0 at the top."""
        target = self.ctx.simple_framebuffer((W, H), components=4)
        try:
            target.use()
            self.draw(K, T_world_camera, H, W, **options)
            return read_rgb(target, H, W)
        finally:
            target.release()


def read_rgb(framebuffer: moderngl.Framebuffer, H: int, W: int) -> np.ndarray:
    """The framebuffer's pixels as uint8 [H, W, 3] with row 0 at the top."""
    data = np.frombuffer(framebuffer.read(components=3, alignment=1), np.uint8)
    return np.ascontiguousarray(data.reshape(H, W, 3)[::-1])
