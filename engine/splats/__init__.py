"""3D Gaussian splat scenes: the INRIA `point_cloud.ply` layout, its cameras, a tile rasteriser that
yields each pixel's (Gaussian, weight) pairs, and the built-in scene as Gaussians (`builtin-gs`)."""
