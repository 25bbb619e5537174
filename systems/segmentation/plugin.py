"""The segmentation systems in data-flow order; installed by the viewer, `segment` and `replay`.

    (encode_scene_views -> collect_embeddings, with background encoding) (-> collect_work, with a
    background worker) -> mark_encoded -> mark_work_done -> manage_objects -> collect_prompts
    -> segment_prompted_view -> lift_prompted_views -> start_propagation -> prepare_views
    -> self_prompt_views -> segment_pending_views -> lift_pending_views
"""

from __future__ import annotations

from components.encoding import Encoding
from components.resources import MaskGrid, SceneData, SegmenterHandle
from components.work import BackgroundWork
from engine.schedule import Schedule, Stage, system
from systems.inverse.system import lift_pending_views, lift_prompted_views
from systems.sam.system import collect_embeddings, encode_scene_views, mark_encoded
from systems.segmentation.objects import manage_objects
from systems.segmentation.prompts import collect_prompts, segment_prompted_view
from systems.segmentation.propagation import segment_pending_views, start_propagation
from systems.segmentation.views import prepare_views
from systems.segmentation.work import collect_work, mark_work_done
from systems.self_prompt.system import self_prompt_views

REQUIRES = (SceneData, MaskGrid, SegmenterHandle)
SYSTEMS = (mark_encoded, mark_work_done, manage_objects, collect_prompts, segment_prompted_view, lift_prompted_views,
           start_propagation, prepare_views, self_prompt_views, segment_pending_views, lift_pending_views)


def segmentation_plugin(schedule: Schedule) -> Schedule:
    """Append the segmentation systems to the simulate stage (skipped until the resources of
    systems.segmentation.setup.insert_segmentation exist), after the background encoder's two
    (skipped without systems.sam.system.insert_encoding's resource) and the background worker's
    collector (skipped without BackgroundWork); returns the schedule."""
    schedule.add(Stage.SIMULATE, *(system(fn, requires=(*REQUIRES, Encoding))
                                   for fn in (encode_scene_views, collect_embeddings)))
    schedule.add(Stage.SIMULATE, system(collect_work, requires=(*REQUIRES, BackgroundWork)))
    return schedule.add(Stage.SIMULATE, *(system(fn, requires=REQUIRES) for fn in SYSTEMS))
