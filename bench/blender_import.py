"""Import an exported OBJ into Blender (bpy, headless) as a user would, check it, and render it.

    PYTHON_WITH_BPY bench/blender_import.py OBJECT.obj docs/export_blender.png [--size 480x360] [--samples 32]

Blender's own OBJ importer (default options: the file's Y is Blender's Z) reads the mesh and its
vertex colours; the script prints what Blender sees (vertex and face counts, the lowest point,
the dimensions, whether the colour attribute came through, the volume) and renders it with Cycles
on the CPU on a grey floor at Blender's z = 0, lit by a sun, seen from above one side.

`bpy` (Blender as a Python module) pins numpy 1.26, which the project's numpy 2 rules out, so it
runs from a Python of its own (`python3.11 -m venv V && V/bin/pip install bpy==5.0.1`); this script
imports nothing of the project.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import bpy
from mathutils import Vector


def import_obj(path: str):
    """The mesh object Blender's OBJ importer makes of `path` (default axes: Y up in the file)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.obj_import(filepath=path)
    (obj,) = [o for o in bpy.context.scene.objects if o.type == "MESH"]
    return obj


def describe(obj) -> dict:
    """What Blender sees of `obj`: counts, world bounds, the colour attribute and the volume."""
    import bmesh  # Blender's mesh module, importable once bpy is

    corners = [obj.matrix_world @ Vector(c) for c in obj.bound_box]
    lo = [min(c[i] for c in corners) for i in range(3)]
    hi = [max(c[i] for c in corners) for i in range(3)]
    mesh = bmesh.new()
    mesh.from_mesh(obj.data)
    volume = mesh.calc_volume(signed=True)
    mesh.free()
    return {"vertices": len(obj.data.vertices), "faces": len(obj.data.polygons),
            "lowest_z": round(lo[2], 4), "dimensions": [round(h - low, 4) for low, h in zip(lo, hi)],
            "colour_attributes": [a.name for a in obj.data.color_attributes],
            "signed_volume": round(volume, 6)}


def vertex_colour_material(obj) -> None:
    """Shade `obj` with its imported vertex colours as the base colour."""
    material = bpy.data.materials.new("vertex colours")
    material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    colour = nodes.new("ShaderNodeVertexColor")
    colour.layer_name = obj.data.color_attributes[0].name
    links.new(colour.outputs["Color"], nodes["Principled BSDF"].inputs["Base Color"])
    obj.data.materials.append(material)


def stage(obj, size: tuple[int, int], samples: int) -> None:
    """A floor at z = 0, a sun, a sky and a camera looking down at `obj` from one side."""
    corners = [obj.matrix_world @ Vector(c) for c in obj.bound_box]
    centre = sum(corners, Vector()) / 8.0
    radius = max((c - centre).length for c in corners)
    bpy.ops.mesh.primitive_plane_add(size=radius * 8.0, location=(centre.x, centre.y, 0.0))
    floor = bpy.context.active_object
    grey = bpy.data.materials.new("floor")
    grey.use_nodes = True
    grey.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (0.6, 0.6, 0.6, 1.0)
    floor.data.materials.append(grey)
    bpy.ops.object.light_add(type="SUN", rotation=(math.radians(40), math.radians(15), math.radians(30)))
    bpy.context.active_object.data.energy = 3.0
    world = bpy.data.worlds.new("sky")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.55, 0.65, 0.8, 1.0)
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.6
    scene = bpy.context.scene
    scene.world = world
    direction = Vector((1.0, -1.6, 0.9)).normalized()
    bpy.ops.object.camera_add(location=centre + direction * radius * 4.0)
    camera = bpy.context.active_object
    camera.rotation_euler = (-direction).to_track_quat("-Z", "Y").to_euler()
    scene.camera = camera
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.image_settings.file_format = "PNG"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("obj")
    parser.add_argument("png")
    parser.add_argument("--size", default="480x360", help="WIDTHxHEIGHT of the render")
    parser.add_argument("--samples", type=int, default=32, help="Cycles samples per pixel")
    args = parser.parse_args(argv)
    width, _, height = args.size.partition("x")
    obj = import_obj(args.obj)
    print(json.dumps({"blender": bpy.app.version_string, "object": obj.name, **describe(obj)}))
    vertex_colour_material(obj)
    stage(obj, (int(width), int(height)), args.samples)
    bpy.context.scene.render.filepath = args.png
    bpy.ops.render.render(write_still=True)
    print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
