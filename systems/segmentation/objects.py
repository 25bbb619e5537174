"""Object lifecycle: create, select, rename, recolour, delete; each object owns one mask grid channel."""

from __future__ import annotations

import esper
import numpy as np

from components.messages import (
    DeleteObjectRequested,
    MaskUpdated,
    NewObjectRequested,
    ObjectCreated,
    ObjectDeleted,
    ObjectRecolored,
    ObjectRenamed,
    ObjectSelected,
    RecolorObjectRequested,
    RenameObjectRequested,
)
from components.resources import ActiveObject, MaskGrid
from components.segmentation import Prompts, SegObject

# Overlay colours, picked to stand out from the built-in scene's red, blue, green, yellow and purple.
PALETTE = ((240, 60, 220), (40, 220, 230), (255, 150, 20), (170, 240, 60), (255, 255, 255),
           (120, 70, 255), (255, 90, 120), (20, 160, 110))


def find_object(object_id: int | None) -> tuple[int, SegObject] | None:
    """(entity, SegObject) of `object_id` in the current world, or None."""
    for entity, obj in esper.get_component(SegObject):
        if obj.id == object_id:
            return entity, obj
    return None


def objects_by_channel(app) -> list[SegObject]:
    """The App's objects in mask grid channel order."""
    with app.active():
        return sorted((obj for _, obj in esper.get_component(SegObject)), key=lambda o: o.channel)


def resolve_object(app, object_id: int | None) -> tuple[int, SegObject] | None:
    """The object a request names: `object_id`, or the active object when it is None."""
    return find_object(app.resource(ActiveObject).object_id if object_id is None else object_id)


def create_object(app, name: str | None = None, color: tuple[int, int, int] | None = None
                  ) -> tuple[int, SegObject]:
    """Create an object entity with a new zero channel; make it active; send ObjectCreated."""
    grid, active = app.resource(MaskGrid), app.resource(ActiveObject)
    object_id, channel = active.next_id, int(grid.votes.shape[0])
    active.next_id += 1
    obj = SegObject(id=object_id, name=name or f"object {object_id}",
                    color=tuple(color or PALETTE[(object_id - 1) % len(PALETTE)]), channel=channel)
    zero = np.zeros((1, *grid.shape), np.float32)
    grid.votes = np.concatenate([grid.votes, zero])
    grid.counts = np.concatenate([grid.counts, zero])
    entity = esper.create_entity(obj, Prompts())
    active.object_id = object_id
    _stamp(app, MaskGrid, SegObject, ActiveObject)
    app.send(ObjectCreated(object_id, obj.name, obj.color, channel))
    return entity, obj


def delete_object(app, entity: int, obj: SegObject) -> None:
    """Remove the object and its channel (later channels move down); send ObjectDeleted."""
    grid, active = app.resource(MaskGrid), app.resource(ActiveObject)
    keep = [k for k in range(grid.votes.shape[0]) if k != obj.channel]
    grid.votes, grid.counts = grid.votes[keep], grid.counts[keep]                 # copies, contiguous
    for _, other in esper.get_component(SegObject):
        if other.channel > obj.channel:
            other.channel -= 1
    esper.delete_entity(entity, immediate=True)
    if active.object_id == obj.id:
        remaining = sorted(o.id for _, o in esper.get_component(SegObject))
        active.object_id = remaining[-1] if remaining else None
    _stamp(app, MaskGrid, SegObject, ActiveObject)
    app.send(ObjectDeleted(obj.id, obj.channel))


def _stamp(app, *kinds: type) -> None:
    for kind in kinds:
        app.mark_changed(kind)


def manage_objects(app) -> None:
    """Reads NewObjectRequested, ObjectSelected, RenameObjectRequested, RecolorObjectRequested,
    DeleteObjectRequested; writes object entities, MaskGrid channels, ActiveObject; sends
    ObjectCreated / ObjectRenamed / ObjectRecolored / ObjectDeleted / MaskUpdated (for channels
    that moved), and stamps what it changed (App.mark_changed). A colour outside 0-255 per channel
    is ignored."""
    for request in app.read(NewObjectRequested):
        create_object(app, request.name, request.color)
    for request in app.read(ObjectSelected):
        if find_object(request.object_id) is not None:
            app.resource(ActiveObject).object_id = request.object_id
            app.mark_changed(ActiveObject)
    for request in app.read(RenameObjectRequested):
        found = find_object(request.object_id)
        if found is not None and request.name.strip():
            found[1].name = request.name.strip()
            app.mark_changed(SegObject)
            app.send(ObjectRenamed(request.object_id, found[1].name))
    for request in app.read(RecolorObjectRequested):
        found = find_object(request.object_id)
        color = tuple(int(c) for c in request.color)
        if found is not None and len(color) == 3 and all(0 <= c <= 255 for c in color):
            found[1].color = color
            app.mark_changed(SegObject)
            app.send(ObjectRecolored(request.object_id, color))
    for request in app.read(DeleteObjectRequested):
        found = resolve_object(app, request.object_id)
        if found is not None:
            delete_object(app, *found)
            for _, other in esper.get_component(SegObject):
                if other.channel >= found[1].channel:
                    app.send(MaskUpdated(other.id, other.channel))
