"""Projection of 3D Gaussians into a view (3DGS's EWA splatting) and their view-dependent colour.

For a camera T_world_camera (OpenCV) with intrinsics K, a Gaussian of mean mu and covariance
Sigma = R S S^T R^T (R from the quaternion, S = diag(scales)) lands at

    t = W (mu - c)                 W = R_world_camera^T, c the camera centre; depth z = t_z
    mu_2d = (fx t_x / z + cx, fy t_y / z + cy)            (pixel (x, y) has its centre at x + 0.5)
    Sigma_2d = J W Sigma W^T J^T + 0.3 I,   J = [[fx / z, 0, -fx t_x / z^2], [0, fy / z, -fy t_y / z^2]]

with t_x / z, t_y / z clamped to 1.3x the image's extent inside J (3DGS's guard against huge
off-screen footprints) and 0.3 px^2 added (the low-pass filter 3DGS trains with). A pixel at offset
d from mu_2d gets alpha = min(0.99, o exp(-d^T Sigma_2d^-1 d / 2)), and only alpha >= 1/255 counts:
that holds inside the ellipse d^T Sigma_2d^-1 d <= 2 ln(255 o), whose bounding box, of half-sizes
sqrt(2 ln(255 o) Sigma_2d[x, x]) and sqrt(2 ln(255 o) Sigma_2d[y, y]), holds every pixel a Gaussian
reaches (its tiles and pixels, exactly; 3DGS bins a 3-sigma square of the larger eigenvalue, which
drops a few pixels of alpha up to 0.011 o and visits many more that get nothing). Gaussians nearer
than NEAR, with o < 1/255 or a box outside the image are culled.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

NEAR = 0.2                # camera depth below which a Gaussian is culled (3DGS)
ALPHA_MIN = 1.0 / 255.0   # smaller alphas are skipped
ALPHA_MAX = 0.99          # alphas are clamped to this
DILATION = 0.3            # px^2 added to the 2D covariance's diagonal
FOV_GUARD = 1.3           # t_x / z, t_y / z clamped to this many times the image's extent inside J

SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
         -0.4570457994644658, 1.445305721320277, -0.5900435899266435)


def sh_to_rgb(sh: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Colour [N, 3] >= 0 of SH coefficients sh [N, C, 3] (C = 1, 4, 9 or 16) seen along unit
    directions dirs [N, 3] (camera centre to Gaussian): 3DGS's real SH basis, plus 0.5."""
    from engine.splats.cloud import SH_C0

    C = sh.shape[1]
    rgb = SH_C0 * sh[:, 0]
    if C > 1:
        x, y, z = (dirs[:, i:i + 1] for i in range(3))                                    # [N, 1] each
        rgb = rgb - SH_C1 * y * sh[:, 1] + SH_C1 * z * sh[:, 2] - SH_C1 * x * sh[:, 3]
        if C > 4:
            xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
            basis = (xy, yz, 2 * zz - xx - yy, xz, xx - yy)
            for k, (c, b) in enumerate(zip(SH_C2, basis)):
                rgb = rgb + c * b * sh[:, 4 + k]
            if C > 9:
                basis = (y * (3 * xx - yy), xy * z, y * (4 * zz - xx - yy), z * (2 * zz - 3 * xx - 3 * yy),
                         x * (4 * zz - xx - yy), z * (xx - yy), x * (xx - 3 * yy))
                for k, (c, b) in enumerate(zip(SH_C3, basis)):
                    rgb = rgb + c * b * sh[:, 9 + k]
    return (rgb + 0.5).clamp(min=0.0)


def rotation_matrices(quats: torch.Tensor) -> torch.Tensor:
    """[N, 3, 3] rotations of unit quaternions [N, 4] (w, x, y, z)."""
    w, x, y, z = quats.unbind(1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], 1).reshape(-1, 3, 3)


def scaled_rotations(quats: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """R S [N, 3, 3] of unit quaternions [N, 4] and scales [N, 3]: the covariance is (R S)(R S)^T."""
    return rotation_matrices(quats) * scales[:, None, :]


@dataclass(frozen=True)
class Projected:
    """The Gaussians that reach a view, projected (M of them, indices into the cloud)."""
    ids: torch.Tensor        # [M] int64 cloud indices
    means2d: torch.Tensor    # [M, 2] pixel position (x, y) of the centre
    conics: torch.Tensor     # [M, 3] inverse 2D covariance (a, b, c): d^T [[a, b], [b, c]] d
    depths: torch.Tensor     # [M] camera depth z
    extent: torch.Tensor     # [M, 2] half-sizes (x, y) in pixels of the box holding every alpha >= 1/255
    opacity: torch.Tensor    # [M]
    rgb: torch.Tensor        # [M, 3] colour seen from this camera


def project(cloud, K, T_world_camera, H: int, W: int, color: bool = True) -> Projected:
    """Project `cloud` (GaussianCloud) into the H x W view of intrinsics K [3, 3] and pose
    T_world_camera [4, 4] (float tensors or arrays); see the module docstring. Without `color` the
    SH are not evaluated (rgb zeros: a third of a view's projection at SH degree 3)."""
    means, device = cloud.means, cloud.means.device
    K = torch.as_tensor(K, dtype=torch.float32, device=device)
    T = torch.as_tensor(T_world_camera, dtype=torch.float32, device=device)
    R_wc, centre = T[:3, :3], T[:3, 3]
    t = (means - centre) @ R_wc                                                   # [N, 3] camera coords
    z = t[:, 2]
    keep = (z > NEAR) & (cloud.opacity >= ALPHA_MIN)
    ids = keep.nonzero().squeeze(1)
    t, z = t[ids], z[ids]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    u, v = t[:, 0] / z, t[:, 1] / z
    spread_x, spread_y = (FOV_GUARD - 1) / 2 * W / fx, (FOV_GUARD - 1) / 2 * H / fy
    u_c = u.clamp(-cx / fx - spread_x, (W - cx) / fx + spread_x)
    v_c = v.clamp(-cy / fy - spread_y, (H - cy) / fy + spread_y)
    W_cam = R_wc.T                                                                # world -> camera rows
    JW = torch.stack([(fx / z)[:, None] * W_cam[0] - (fx * u_c / z)[:, None] * W_cam[2],
                      (fy / z)[:, None] * W_cam[1] - (fy * v_c / z)[:, None] * W_cam[2]], 1)   # [M, 2, 3]
    M = scaled_rotations(cloud.quats[ids], cloud.scales[ids])                     # R S [M, 3, 3]
    JWM = (JW[:, :, :, None] * M[:, None, :, :]).sum(2)                           # [M, 2, 3] (tiny
                                                                                  # batched matmuls are slow)
    a = (JWM[:, 0] * JWM[:, 0]).sum(1) + DILATION                                 # Sigma_2d = JWM JWM^T
    b = (JWM[:, 0] * JWM[:, 1]).sum(1)
    c = (JWM[:, 1] * JWM[:, 1]).sum(1) + DILATION
    det = a * c - b * b
    opacity = cloud.opacity[ids]
    reach = 2.0 * torch.log(255.0 * opacity).clamp(min=0.0)                      # [M] the ellipse's k^2
    extent = torch.stack([(reach * a).sqrt(), (reach * c).sqrt()], 1) * 1.0001 + 1e-3   # [M, 2], rounding
                                                                                # margin: alpha decides
    mx, my = fx * u + cx, fy * v + cy
    on_screen = ((det > 0) & (mx + extent[:, 0] > 0) & (mx - extent[:, 0] < W) & (my + extent[:, 1] > 0)
                 & (my - extent[:, 1] < H) & (reach > 0))
    sel = on_screen.nonzero().squeeze(1)
    det = det[sel]
    conics = torch.stack([c[sel] / det, -b[sel] / det, a[sel] / det], 1)
    if color:
        rgb = sh_to_rgb(cloud.sh[ids[sel]], torch.nn.functional.normalize(means[ids[sel]] - centre, dim=1))
    else:
        rgb = torch.zeros(len(sel), 3, device=device)
    return Projected(ids=ids[sel], means2d=torch.stack([mx[sel], my[sel]], 1), conics=conics,
                     depths=z[sel], extent=extent[sel], opacity=opacity[sel], rgb=rgb)
