"""export_requested in a headless App (no background worker): the frame that reads an ExportRequested
answers it with ExportFinished."""

from pathlib import Path

import esper
import numpy as np
import pytest
import trimesh
from test_export import BBOX, _grid, orbit_cameras, two_sphere_field

from components.resources import MaskGrid, SceneData, SegmentationSettings, ViewCache
from components.segmentation import SegObject
from engine.app import App
from engine.schedule import Schedule
from systems.export.export import ExportOptions
from systems.export.system import ExportFinished, ExportRequested, export_requested
from systems.inverse.representation import as_frozen_scene


@pytest.fixture(scope="module")
def field():
    return two_sphere_field()


class _Scene:
    """The views of the two spheres (systems/export/scene_views.py carves with a scene's views)."""

    def __init__(self):
        cams = orbit_cameras()
        self.K = np.stack([c.K for c in cams])
        self.T_world_camera = np.stack([c.T_world_camera for c in cams])
        self.H, self.W = cams[0].H, cams[0].W
        self.view_names = [f"v{i}" for i in range(len(cams))]
        self.images = np.zeros((len(cams), self.H, self.W, 3), np.uint8)

    def __len__(self) -> int:
        return len(self.view_names)

    def content_hash(self) -> str:
        return "scene"


def _app(field):
    app = App(Schedule.of(simulate=[export_requested]))
    votes = _grid().votes
    app.insert_resource(SceneData(scene=_Scene(), field=field, representation=as_frozen_scene(field),
                                  field_hash="field"))
    app.insert_resource(MaskGrid(votes=votes, counts=np.ones_like(votes), bbox=np.asarray(BBOX, np.float32)))
    app.insert_resource(SegmentationSettings())
    app.insert_resource(ViewCache())
    with app.active():
        esper.create_entity(SegObject(id=7, name="red", color=(255, 0, 0), channel=0))
        esper.create_entity(SegObject(id=8, name="blue", color=(0, 0, 255), channel=1))
    return app


def test_one_frame_exports_the_requested_object(field, tmp_path):
    app = _app(field)
    app.send(ExportRequested(str(tmp_path / "blue.obj"), ExportOptions(format="obj"), object_id=8))
    app.send(ExportRequested(str(tmp_path / "gone.obj"), ExportOptions(format="obj"), object_id=99))
    app.step()
    done = {Path(d.out).name: d for d in app.messages.read(ExportFinished, "test")}
    assert done["blue.obj"].error is None and "object id 99" in done["gone.obj"].error
    assert done["blue.obj"].paths == (str(tmp_path / "blue.obj"),) and done["gone.obj"].paths == ()
    mesh = trimesh.load(tmp_path / "blue.obj", process=False)
    assert mesh.is_watertight and mesh.bounds.mean(0)[0] > 0.3
    app.close()


def test_the_viewer_offers_the_registry_s_formats_of_each_scene_kind():
    from systems.export.registry import REGISTRY
    from systems.export.splats import SPLAT_FORMATS
    from systems.viewer.session import export_choices, export_request

    voxels, gaussians = export_choices("voxels"), export_choices("gaussians")
    assert {k.name for k in voxels.values()} == {f.name for f in REGISTRY} - {"splats", "splats-removed"}
    assert {k.name for k in gaussians.values()} == set(SPLAT_FORMATS)
    assert set(SPLAT_FORMATS) == {f.name for f in REGISTRY} - {"obj", "mesh-ply"}
    for choices in (voxels, gaussians):
        outs = set()
        for label, kind in choices.items():
            request = export_request(label, Path("out"), 1, "red ball", choices)
            assert request.options.format == kind.name and request.object_id == 1
            assert Path(request.out).parent == Path("out") and Path(request.out).name.startswith("red_ball")
            outs.add(request.out)
        assert len(outs) == len(choices)                                  # no two formats overwrite one file


def test_a_folder_that_cannot_be_written_is_one_line(field, tmp_path):
    app = _app(field)
    (tmp_path / "file").write_text("not a folder")
    app.send(ExportRequested(str(tmp_path / "file" / "blue.obj"), ExportOptions(format="obj"), object_id=8))
    app.step()
    (done,) = app.messages.read(ExportFinished, "test")
    assert done.paths == () and done.error.startswith(f"cannot write {tmp_path / 'file' / 'blue.obj'} (")
    assert "\n" not in done.error and (tmp_path / "file").read_text() == "not a folder"
    app.close()
