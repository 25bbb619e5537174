"""The export formats, in one table that the command line and the viewer's panel read.

Each format says what it writes (one file or a folder of PNGs), its usual file name, whether it
needs the object's solid mask (carved from the scene's views: systems/export/carving.py), whether
it renders cameras and which scene representations have it. systems/export/export.py writes a voxel
field's objects, systems/export/splats.py a splat scene's.
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
    scenes: tuple[str, ...] = ("voxels", "gaussians")   # representation kinds it exports (Representation.kind)


REGISTRY: tuple[ExportFormat, ...] = (
    ExportFormat("npz", "mask grid (npz)", "{name}.npz", folder=False, solid=True, renders=False,
                 help="solid 3D masks and votes of the objects on the field's grid, with its geometry"),
    ExportFormat("obj", "mesh (obj)", "{name}.obj", folder=False, solid=True, renders=False,
                 help="Wavefront OBJ mesh with vertex colours, Y-up by default (--up)", scenes=("voxels",)),
    ExportFormat("mesh-ply", "mesh (ply)", "{name}_mesh.ply", folder=False, solid=True, renders=False,
                 help="binary PLY mesh with vertex colours, world axes", scenes=("voxels",)),
    ExportFormat("ply", "point cloud (ply)", "{name}.ply", folder=False, solid=True, renders=False,
                 help="binary PLY coloured points on the object's visible surface (a splat scene's: the "
                 "Gaussians' centres), world axes"),
    ExportFormat("masks", "masks (png per view)", "{name}_masks", folder=True, solid=False, renders=True,
                 help="0/255 PNG mask of the object in every view"),
    ExportFormat("object-renders", "object alone (png per view)", "{name}_alone", folder=True, solid=True,
                 renders=True, help="RGB PNG renders of the object alone"),
    ExportFormat("removed-renders", "scene without it (png per view)", "{name}_removed", folder=True, solid=True,
                 renders=True, help="RGB PNG renders of the scene with the object removed"),
    ExportFormat("splats", "splats (3DGS ply)", "{name}_splats.ply", folder=False, solid=False,
                 renders=False, help="splat scenes: a 3DGS .ply of the object's Gaussians", scenes=("gaussians",)),
    ExportFormat("splats-removed", "scene without it (3DGS ply)", "{name}_removed_splats.ply", folder=False,
                 solid=False, renders=False, help="splat scenes: a 3DGS .ply of all the other Gaussians",
                 scenes=("gaussians",)),
)
FORMATS: dict[str, ExportFormat] = {f.name: f for f in REGISTRY}


def scene_formats(kind: str) -> tuple[ExportFormat, ...]:
    """The formats of a scene representation's kind ("voxels", "gaussians"), in menu order."""
    return tuple(f for f in REGISTRY if kind in f.scenes)
