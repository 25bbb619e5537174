"""Reading and writing 3DGS `point_cloud.ply` files with plyfile (binary little-endian on write).

A file read and written again keeps every vertex property: same names, order and dtypes, same bits.
Errors are SplatError lines that name the file and the property that is missing or malformed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plyfile

from engine.io import atomic_path
from engine.splats.cloud import GaussianCloud, SplatError, from_vertex


def read_splats(path: str | Path) -> GaussianCloud:
    """The Gaussians of a 3DGS `.ply` (any PLY encoding); SplatError when it is not one."""
    path = Path(path)
    try:
        data = plyfile.PlyData.read(str(path))
    except FileNotFoundError:
        raise SplatError(f"{path} does not exist: give a 3DGS point_cloud.ply or its output folder") from None
    except (plyfile.PlyParseError, plyfile.PlyHeaderParseError, ValueError, EOFError, OSError) as error:
        raise SplatError(f"{path} is not a readable PLY file ({error}); write it again from the trainer") from None
    if "vertex" not in data:
        raise SplatError(f"{path}: no 'vertex' element (elements: {', '.join(e.name for e in data.elements)}); "
                         "give a 3DGS point_cloud.ply")
    vertex = data["vertex"].data
    names = vertex.dtype.names or ()
    if "packed_position" in names:
        raise SplatError(f"{path}: property 'x' is missing: this is a compressed splat PLY "
                         "(packed_position); decompress it to the 3DGS layout first (e.g. SuperSplat's "
                         "export as .ply)")
    if len(vertex) == 0:
        raise SplatError(f"{path} holds no Gaussians: give a trained point_cloud.ply")
    little = vertex.astype([(n, vertex.dtype[n].newbyteorder("<")) for n in names], copy=False)
    return from_vertex(little, str(path), tuple(data.comments))


def write_splats(path: str | Path, cloud: GaussianCloud) -> None:
    """Write the cloud's vertex table (every property, as read) as binary little-endian, atomically."""
    element = plyfile.PlyElement.describe(np.ascontiguousarray(cloud.vertex), "vertex")
    data = plyfile.PlyData([element], text=False, byte_order="<", comments=list(cloud.comments))
    with atomic_path(path) as tmp:
        data.write(str(tmp))
