"""A cloud of 3D Gaussians as the INRIA 3DGS `.ply` stores it, and its activated parameters (torch).

`vertex` is the file's vertex table as read (a numpy structured array: every property, name, order
and dtype), so that a subset saved again keeps the input's layout bit for bit. The activated tensors
follow 3DGS: position (x, y, z); colour as real spherical harmonics, the DC term f_dc_0..2 and
f_rest_* stored channel-major ([3, C - 1] flattened: f_rest_{c * (C - 1) + k}); opacity =
sigmoid(opacity); scale = exp(scale_0..2); rotation = the normalised quaternion rot_0..3 (w x y z).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from engine.errors import UserFacingError

REQUIRED = ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
            "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")
REST_COUNTS = {0: 0, 9: 1, 24: 2, 45: 3}          # number of f_rest_* properties -> SH degree
SH_C0 = 0.28209479177387814                        # Y_0^0: colour = SH_C0 * f_dc + 0.5


class SplatError(UserFacingError):
    """A splat file or scene that cannot be used; the message names the property or file and the fix."""


def sh_degree_of(names: tuple[str, ...], where: str) -> int:
    """SH degree from the f_rest_* properties present; SplatError when they are not 0/9/24/45 in order."""
    rest = [n for n in names if n.startswith("f_rest_")]
    if len(rest) not in REST_COUNTS or rest != [f"f_rest_{i}" for i in range(len(rest))]:
        raise SplatError(f"{where}: property f_rest_* malformed: found {len(rest)} (expected f_rest_0 .. "
                         "f_rest_N for 0, 9, 24 or 45 of them: SH degree 0 to 3); write the file again "
                         "from the trainer")
    return REST_COUNTS[len(rest)]


def check_vertex(vertex: np.ndarray, where: str) -> int:
    """SplatError naming the first required property that is missing, not a float, or not finite
    (positions, opacity, scales, colours) or a zero quaternion; returns the SH degree."""
    names = vertex.dtype.names or ()
    for name in REQUIRED:
        if name not in names:
            raise SplatError(f"{where}: property '{name}' is missing (a 3DGS point_cloud.ply has "
                             f"{', '.join(REQUIRED)} and f_rest_*); export it from a 3DGS trainer")
    degree = sh_degree_of(names, where)
    for name in names:
        kind = vertex.dtype[name].kind
        if (name in REQUIRED or name.startswith("f_rest_")) and kind != "f":
            raise SplatError(f"{where}: property '{name}' is malformed: {vertex.dtype[name]} instead of "
                             "float; write it as float")
        if name in REQUIRED and kind == "f":
            bad = np.flatnonzero(~np.isfinite(vertex[name]))
            if bad.size:
                raise SplatError(f"{where}: property '{name}' is malformed: {bad.size} values are not "
                                 f"finite (first at Gaussian {bad[0]}); drop those Gaussians")
    quat = np.stack([vertex[f"rot_{i}"].astype(np.float64) for i in range(4)], 1)
    zero = np.flatnonzero((quat ** 2).sum(1) == 0.0)
    if zero.size:
        raise SplatError(f"{where}: property 'rot_0..3' is malformed: {zero.size} zero quaternions "
                         f"(first at Gaussian {zero[0]}); drop those Gaussians")
    return degree


@dataclass(frozen=True, eq=False)
class GaussianCloud:
    """N Gaussians: the raw vertex table and the activated float32 tensors derived from it."""
    vertex: np.ndarray              # [N] structured: the file's properties, as read
    means: torch.Tensor             # [N, 3] world positions
    sh: torch.Tensor                # [N, C, 3] SH coefficients, C = (degree + 1)^2, DC first
    opacity: torch.Tensor           # [N] in (0, 1)
    scales: torch.Tensor            # [N, 3] standard deviations along the local axes
    quats: torch.Tensor             # [N, 4] unit quaternions (w, x, y, z)
    comments: tuple[str, ...] = field(default=())   # the header's comments, written back on save

    @property
    def sh_degree(self) -> int:
        return int(round(self.sh.shape[1] ** 0.5)) - 1

    def __len__(self) -> int:
        return int(self.vertex.shape[0])

    def subset(self, keep: np.ndarray) -> GaussianCloud:
        """The Gaussians where bool `keep` [N] is true (or the indices `keep`), every property kept."""
        keep = np.asarray(keep)
        index = torch.from_numpy(np.flatnonzero(keep) if keep.dtype == bool else keep.astype(np.int64))
        return GaussianCloud(self.vertex[index.numpy()], self.means[index], self.sh[index],
                             self.opacity[index], self.scales[index], self.quats[index], self.comments)


def from_vertex(vertex: np.ndarray, where: str = "splats", comments: tuple[str, ...] = ()) -> GaussianCloud:
    """The cloud of a vertex table in the 3DGS layout (checked first: see check_vertex)."""
    degree = check_vertex(vertex, where)
    column = lambda name: torch.from_numpy(np.ascontiguousarray(vertex[name], dtype=np.float32))
    stack = lambda names: torch.stack([column(n) for n in names], 1)
    rest = (degree + 1) ** 2 - 1
    dc = stack([f"f_dc_{c}" for c in range(3)])                                      # [N, 3]
    sh = dc[:, None, :]                                                              # [N, 1, 3]
    if rest:
        higher = stack([f"f_rest_{i}" for i in range(3 * rest)])                     # [N, 3 * rest]
        sh = torch.cat([sh, higher.reshape(-1, 3, rest).transpose(1, 2)], 1)         # [N, C, 3]
    quats = stack([f"rot_{i}" for i in range(4)])
    return GaussianCloud(
        vertex=vertex, means=stack(["x", "y", "z"]), sh=sh.contiguous(),
        opacity=torch.sigmoid(column("opacity")), scales=torch.exp(stack([f"scale_{i}" for i in range(3)])),
        quats=quats / quats.norm(dim=1, keepdim=True), comments=tuple(comments))


def vertex_table(means: np.ndarray, sh: np.ndarray, opacity: np.ndarray, scales: np.ndarray,
                 quats: np.ndarray) -> np.ndarray:
    """The INRIA layout (x y z nx ny nz f_dc_* f_rest_* opacity scale_* rot_*, float32) of activated
    parameters: means [N, 3], sh [N, C, 3], opacity [N] in (0, 1), scales [N, 3] > 0, quats [N, 4]."""
    n, C = sh.shape[0], sh.shape[1]
    names = (["x", "y", "z", "nx", "ny", "nz"] + [f"f_dc_{c}" for c in range(3)]
             + [f"f_rest_{i}" for i in range(3 * (C - 1))] + ["opacity"]
             + [f"scale_{i}" for i in range(3)] + [f"rot_{i}" for i in range(4)])
    table = np.zeros(n, dtype=[(name, "<f4") for name in names])
    for i, axis in enumerate("xyz"):
        table[axis] = means[:, i]
    for c in range(3):
        table[f"f_dc_{c}"] = sh[:, 0, c]
    rest = np.ascontiguousarray(np.transpose(sh[:, 1:, :], (0, 2, 1))).reshape(n, -1)   # channel-major
    for i in range(rest.shape[1]):
        table[f"f_rest_{i}"] = rest[:, i]
    p = np.clip(opacity, 1e-6, 1 - 1e-6)
    table["opacity"] = np.log(p / (1 - p))
    for i in range(3):
        table[f"scale_{i}"] = np.log(scales[:, i])
        table[f"rot_{i}"] = quats[:, i]
    table["rot_3"] = quats[:, 3]
    return table
