"""Analytic primitives of the built-in scene: exact ray hits and exact inside tests (numpy only).

World frame of the built-in scene: +Z up, the ground is the plane z = 0. Every `intersect` takes
ray origins o [M, 3] and directions d [M, 3] (any length, not normalised) and returns the ray
parameter t [M] of the first surface hit in front of the origin (np.inf where the ray misses)
and the outward unit normal [M, 3] there. Points on the ray are o + t * d, so with directions
whose camera-z component is 1, t is the camera depth. Rays are assumed to start outside the solid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = 1e-6  # hits closer than this (in t) are ignored


def _yaw_matrix(yaw_deg: float) -> np.ndarray:
    """[3, 3] rotation about +Z by yaw_deg degrees (local -> world)."""
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rows_times(x: np.ndarray, M: np.ndarray) -> np.ndarray:
    """x @ M for [M, 3] rows and a [3, 3] matrix, elementwise (BLAS is slow for such thin shapes)."""
    return x[:, :1] * M[0] + x[:, 1:2] * M[1] + x[:, 2:] * M[2]


def _smallest_valid(*candidates: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per ray, the smallest t > EPS among (t [M], valid [M]) pairs and which candidate gave it."""
    ts = np.stack([np.where(valid & (t > EPS), t, np.inf) for t, valid in candidates])  # [C, M]
    which = np.argmin(ts, axis=0)                                                       # [M]
    return ts[which, np.arange(ts.shape[1])], which


def _quadratic_roots(a: np.ndarray, b: np.ndarray, c: np.ndarray):
    """Both real roots of a t^2 + b t + c = 0 ([M] each) and a [M] mask of where they exist."""
    disc = b * b - 4.0 * a * c
    ok = (disc >= 0.0) & (np.abs(a) > 1e-12)
    sq = np.sqrt(np.where(ok, disc, 0.0))
    safe_a = np.where(ok, a, 1.0)
    return (-b - sq) / (2.0 * safe_a), (-b + sq) / (2.0 * safe_a), ok


@dataclass(frozen=True)
class Sphere:
    center: tuple[float, float, float]
    radius: float

    def intersect(self, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        oc = o - np.asarray(self.center)                                      # [M, 3]
        t0, t1, ok = _quadratic_roots((d * d).sum(1), 2.0 * (oc * d).sum(1),
                                      (oc * oc).sum(1) - self.radius ** 2)
        t, _ = _smallest_valid((t0, ok), (t1, ok))
        hit = o + np.where(np.isfinite(t), t, 0.0)[:, None] * d
        return t, (hit - np.asarray(self.center)) / self.radius

    def inside(self, p: np.ndarray) -> np.ndarray:
        return ((p - np.asarray(self.center)) ** 2).sum(1) <= self.radius ** 2


@dataclass(frozen=True)
class Box:
    center: tuple[float, float, float]
    half_size: tuple[float, float, float]
    yaw_deg: float = 0.0  # rotation about +Z

    def _local(self, p: np.ndarray) -> np.ndarray:
        return rows_times(p - np.asarray(self.center), _yaw_matrix(self.yaw_deg))  # R^T (p - c)

    def intersect(self, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        R = _yaw_matrix(self.yaw_deg)
        ol, dl = self._local(o), rows_times(d, R)                                       # [M, 3] each
        h = np.asarray(self.half_size)
        dl_safe = np.where(np.abs(dl) < 1e-12, 1e-12, dl)
        t_a, t_b = (-h - ol) / dl_safe, (h - ol) / dl_safe                    # [M, 3]
        t_near, t_far = np.minimum(t_a, t_b), np.maximum(t_a, t_b)
        t_enter, t_exit = t_near.max(1), t_far.min(1)                         # [M]
        t, _ = _smallest_valid((t_enter, t_enter <= t_exit))
        axis = t_near.argmax(1)                                               # [M]
        n_local = np.zeros_like(ol)
        n_local[np.arange(len(o)), axis] = -np.sign(dl[np.arange(len(o)), axis])
        return t, rows_times(n_local, R.T)

    def inside(self, p: np.ndarray) -> np.ndarray:
        return (np.abs(self._local(p)) <= np.asarray(self.half_size)).all(1)


@dataclass(frozen=True)
class Cylinder:
    """Vertical cylinder with flat caps: axis through (x, y), from z0 up to z1."""
    center_xy: tuple[float, float]
    radius: float
    z0: float
    z1: float

    def intersect(self, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ox, oy = o[:, 0] - self.center_xy[0], o[:, 1] - self.center_xy[1]
        dx, dy, dz = d[:, 0], d[:, 1], d[:, 2]
        s0, s1, ok = _quadratic_roots(dx * dx + dy * dy, 2 * (ox * dx + oy * dy),
                                      ox * ox + oy * oy - self.radius ** 2)
        on_side = lambda t: ok & (o[:, 2] + t * dz >= self.z0) & (o[:, 2] + t * dz <= self.z1)
        dz_safe = np.where(np.abs(dz) < 1e-12, 1e-12, dz)
        caps = [(self.z1 - o[:, 2]) / dz_safe, (self.z0 - o[:, 2]) / dz_safe]
        in_disk = lambda t: (ox + t * dx) ** 2 + (oy + t * dy) ** 2 <= self.radius ** 2
        t, which = _smallest_valid((s0, on_side(s0)), (s1, on_side(s1)),
                                   (caps[0], in_disk(caps[0])), (caps[1], in_disk(caps[1])))
        tt = np.where(np.isfinite(t), t, 0.0)
        side = np.stack([(ox + tt * dx) / self.radius, (oy + tt * dy) / self.radius,
                         np.zeros_like(tt)], 1)
        n = np.where((which < 2)[:, None], side, 0.0)
        n[:, 2] += np.where(which == 2, 1.0, 0.0) - np.where(which == 3, 1.0, 0.0)
        return t, n

    def inside(self, p: np.ndarray) -> np.ndarray:
        rho2 = (p[:, 0] - self.center_xy[0]) ** 2 + (p[:, 1] - self.center_xy[1]) ** 2
        return (rho2 <= self.radius ** 2) & (p[:, 2] >= self.z0) & (p[:, 2] <= self.z1)


@dataclass(frozen=True)
class Cone:
    """Vertical cone: base disk of `radius` at height z0 around (x, y), apex `height` above it."""
    center_xy: tuple[float, float]
    radius: float
    z0: float
    height: float

    def intersect(self, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k2 = (self.radius / self.height) ** 2
        apex = self.z0 + self.height
        ox, oy, q = o[:, 0] - self.center_xy[0], o[:, 1] - self.center_xy[1], apex - o[:, 2]
        dx, dy, dz = d[:, 0], d[:, 1], d[:, 2]
        # (ox + t dx)^2 + (oy + t dy)^2 = k2 (q - t dz)^2
        s0, s1, ok = _quadratic_roots(dx * dx + dy * dy - k2 * dz * dz,
                                      2 * (ox * dx + oy * dy + k2 * q * dz),
                                      ox * ox + oy * oy - k2 * q * q)
        on_side = lambda t: ok & (o[:, 2] + t * dz >= self.z0) & (o[:, 2] + t * dz <= apex)
        t_base = (self.z0 - o[:, 2]) / np.where(np.abs(dz) < 1e-12, 1e-12, dz)
        in_base = (ox + t_base * dx) ** 2 + (oy + t_base * dy) ** 2 <= self.radius ** 2
        t, which = _smallest_valid((s0, on_side(s0)), (s1, on_side(s1)), (t_base, in_base))
        tt = np.where(np.isfinite(t), t, 0.0)
        grad = np.stack([ox + tt * dx, oy + tt * dy, k2 * (q - tt * dz)], 1)  # [M, 3]
        grad /= np.maximum(np.linalg.norm(grad, axis=1, keepdims=True), 1e-12)
        n = np.where((which < 2)[:, None], grad, np.array([0.0, 0.0, -1.0]))
        return t, n

    def inside(self, p: np.ndarray) -> np.ndarray:
        rho = np.hypot(p[:, 0] - self.center_xy[0], p[:, 1] - self.center_xy[1])
        height_left = self.z0 + self.height - p[:, 2]
        return (p[:, 2] >= self.z0) & (height_left >= 0) & \
            (rho <= self.radius * height_left / self.height)


@dataclass(frozen=True)
class GroundSquare:
    """The finite ground: the square |x|, |y| <= half_size of the plane z = 0, seen from above."""
    half_size: float

    def intersect(self, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        down = d[:, 2] < -1e-12
        t = -o[:, 2] / np.where(down, d[:, 2], -1.0)
        xy = o[:, :2] + t[:, None] * d[:, :2]
        valid = down & (np.abs(xy) <= self.half_size).all(1)
        t, _ = _smallest_valid((t, valid))
        return t, np.broadcast_to(np.array([0.0, 0.0, 1.0]), o.shape)
