"""The export formats, in one table that the command line and the viewer's panel read.

Each format says what it writes (one file or a folder of PNGs), its usual file name, whether it
needs the object's solid mask (carved from the scene's views: systems/export/carving.py) and
whether it renders cameras. systems/export/export.py writes them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExportFormat:
    name: str            # the --format value
    label: str           # what a menu shows
    default_name: str    # output file or folder, "{name}" = the object's name
    folder: bool         # writes a folder of per-camera PNGs (atomically, with export.json)
    solid: bool          # needs the object's solid mask
    renders: bool        # renders the scene's views or a camera path
    help: str            # one line for --help


REGISTRY: tuple[ExportFormat, ...] = (
    ExportFormat("npz", "mask grid (npz)", "{name}.npz", folder=False, solid=True, renders=False,
                 help="solid 3D masks and votes of the objects on the field's grid, with its geometry"),
    ExportFormat("obj", "mesh (obj)", "{name}.obj", folder=False, solid=True, renders=False,
                 help="Wavefront OBJ mesh with vertex colours, Y-up by default (--up)"),
    ExportFormat("mesh-ply", "mesh (ply)", "{name}_mesh.ply", folder=False, solid=True, renders=False,
                 help="binary PLY mesh with vertex colours, world axes"),
    ExportFormat("ply", "point cloud (ply)", "{name}.ply", folder=False, solid=True, renders=False,
                 help="binary PLY coloured points on the object's visible surface, world axes"),
    ExportFormat("masks", "masks (png per view)", "{name}_masks", folder=True, solid=False, renders=True,
                 help="0/255 PNG mask of the object in every view"),
    ExportFormat("object-renders", "object alone (png per view)", "{name}_alone", folder=True, solid=True,
                 renders=True, help="RGB PNG renders of the object alone"),
    ExportFormat("removed-renders", "scene without it (png per view)", "{name}_removed", folder=True, solid=True,
                 renders=True, help="RGB PNG renders of the scene with the object removed"),
    ExportFormat("splats", "object's Gaussians (3DGS ply)", "{name}_splats.ply", folder=False, solid=False,
                 renders=False, help="splat scenes: a 3DGS .ply of the object's Gaussians"),
    ExportFormat("splats-removed", "scene without it (3DGS ply)", "{name}_removed_splats.ply", folder=False,
                 solid=False, renders=False, help="splat scenes: a 3DGS .ply of all the other Gaussians"),
)
FORMATS: dict[str, ExportFormat] = {f.name: f for f in REGISTRY}
