"""The ECS runtime: stage order, messages across frames, resources, headless stepping, worlds."""

from dataclasses import dataclass

import esper
import pytest

from engine.app import App, MissingResource
from engine.schedule import Schedule, Stage, system


@dataclass(frozen=True)
class Ping:
    n: int


class Log(list):
    """A resource systems append to."""


def _logger(tag):
    def log_system(app):
        app.resource(Log).append((app.frame, tag))
    log_system.__qualname__ = f"log_{tag}"
    return log_system


def test_stages_run_in_order_and_startup_once():
    schedule = Schedule.of(**{s.value: [_logger(s.value)] for s in reversed(list(Stage))})
    app = App(schedule)
    app.insert_resource(Log())
    app.run(max_frames=2)
    assert app.resource(Log) == [
        (0, "startup"), (0, "input"), (0, "simulate"), (0, "present"), (0, "ui"), (0, "end"),
        (1, "input"), (1, "simulate"), (1, "present"), (1, "ui"), (1, "end"),
    ]


def test_systems_within_a_stage_keep_their_written_order():
    schedule = Schedule.of(simulate=[_logger("b"), _logger("a"), _logger("c")])
    app = App(schedule)
    app.insert_resource(Log())
    app.step()
    assert [tag for _, tag in app.resource(Log)] == ["b", "a", "c"]


def _sender(app):
    if app.frame == 0:
        app.send(Ping(7))


def _early_reader(app):
    app.resource(Log).append(("early", app.frame, [p.n for p in app.read(Ping)]))


def _late_reader(app):
    app.resource(Log).append(("late", app.frame, [p.n for p in app.read(Ping)]))


def test_messages_reach_every_reader_once_across_the_frame_boundary():
    app = App(Schedule.of(input=[_early_reader], simulate=[_sender], end=[_late_reader]))
    app.insert_resource(Log())
    app.run(max_frames=3)
    log = app.resource(Log)
    # The late reader runs after the sender: it sees the message in the same frame.
    assert ("late", 0, [7]) in log and ("late", 1, []) in log
    # The early reader ran before the sender: it sees it in the next frame.
    assert ("early", 0, []) in log and ("early", 1, [7]) in log
    # After two frames the message is gone for everyone.
    assert ("early", 2, []) in log and ("late", 2, []) in log
    assert app.messages.pending(Ping) == 0


def test_resources_are_typed_and_missing_ones_fail_loudly():
    app = App()
    app.insert_resource(Log([1]))
    assert app.resource(Log) == [1]
    app.insert_resource(Log([2]))
    assert app.resource(Log) == [2]
    with pytest.raises(MissingResource, match="Ping"):
        app.resource(Ping)
    assert app.try_resource(Ping) is None
    app.remove_resource(Log)
    assert not app.has_resource(Log)


class Window:
    """Stands in for a platform resource that only exists in a windowed run."""


def test_systems_needing_a_missing_resource_are_skipped_headless():
    app = App(Schedule.of(simulate=[_logger("sim")], present=[system(_logger("draw"), requires=(Window,))]))
    app.insert_resource(Log())
    app.run(max_frames=2)
    assert [tag for _, tag in app.resource(Log)] == ["sim", "sim"]
    app.insert_resource(Window())
    app.step()
    assert [tag for _, tag in app.resource(Log)][-2:] == ["sim", "draw"]


@dataclass
class Counter:
    value: int = 0


def _count_up(app):
    for _, counter in esper.get_component(Counter):
        counter.value += 1


def test_each_app_has_its_own_world():
    first, second = App(Schedule.of(simulate=[_count_up])), App(Schedule.of(simulate=[_count_up]))
    with first.active():
        entity = esper.create_entity(Counter())
    first.run(max_frames=3)
    second.run(max_frames=5)
    with first.active():
        assert esper.component_for_entity(entity, Counter).value == 3
    with second.active():
        assert esper.get_component(Counter) == []
    first.close()
    second.close()
    assert first.world not in esper.list_worlds()


def test_run_stops_on_request_and_on_condition():
    def stopper(app):
        if app.frame == 4:
            app.exit_requested = True

    app = App(Schedule.of(end=[stopper]))
    assert app.run(max_frames=100) == 5
    other = App()
    assert other.run(until=lambda a: a.frame >= 3) == 3


def test_schedule_describes_itself_in_order():
    text = Schedule.of(simulate=[_sender], end=[_late_reader]).describe()
    assert text.index("_sender") < text.index("_late_reader")
    assert text.splitlines()[0].strip().startswith("startup")


@dataclass
class Tally:
    value: int = 0


def test_change_detection_is_one_version_per_kind_with_a_cursor_per_system():
    seen = {"a": [], "b": []}

    def watcher(tag):
        def watch(app):
            seen[tag].append(app.changed(Tally))
        watch.__qualname__ = f"watch_{tag}"
        return watch

    def writer(app):
        if app.frame in (1, 3):                      # changed in place, then stamped by its writer
            app.resource(Tally).value += 1
            app.mark_changed(Tally)

    app = App(Schedule.of(simulate=[watcher("a"), writer, watcher("b")]))
    app.insert_resource(Tally())                   # inserting stamps it
    app.run(max_frames=5)
    assert seen["a"] == [True, False, True, False, True]   # a runs before the writer: sees it next frame
    assert seen["b"] == [True, True, False, True, False]
    before = app.version(Tally)
    app.insert_resource(Tally(5))                  # replacing stamps it again
    assert app.version(Tally) > before and app.version(Log) == 0
