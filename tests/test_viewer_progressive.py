"""The progressive render state: its transition table and the bands it asks for."""

from systems.render.progressive import TRANSITIONS, FrameWork, Phase, ProgressiveConfig, ProgressiveState

CONFIG = ProgressiveConfig(low_scale=4, budget_s=0.03, refine_budget_s=0.03, min_rows=8)


def test_every_phase_answers_every_event():
    assert {(p, e) for p in Phase for e in ("moved", "changed", "still")} == set(TRANSITIONS)


def test_moving_draws_low_res_then_still_refines_band_by_band_to_done():
    state = ProgressiveState()
    assert state.plan("moved", 720, CONFIG) == FrameWork(low=True)
    first = state.plan("still", 720, CONFIG)
    assert (first.row, first.rows, first.upscale_first) == (0, 8, True)   # no timing yet: min_rows
    state.measured(first, 0.008, CONFIG)                                          # 1 ms per row -> 30 rows
    bands = [first]
    while state.phase is Phase.REFINING:
        bands.append(state.plan("still", 720, CONFIG))
        state.measured(bands[-1], 0.001 * bands[-1].rows, CONFIG)
    assert state.phase is Phase.DONE
    assert [b.row for b in bands] == [sum(b.rows for b in bands[:i]) for i in range(len(bands))]
    assert sum(b.rows for b in bands) == 720 and bands[1].rows == 30
    assert not any(b.upscale_first for b in bands[1:])
    assert state.plan("still", 720, CONFIG) == FrameWork()                # done: nothing to draw


def test_moving_interrupts_refining_and_a_change_restarts_it_from_a_whole_low_res_frame():
    """A change (overlay toggle, new mask) never refines bands over the old image: the whole view
    is drawn in the new state at low resolution, then refined from the top over that frame."""
    state = ProgressiveState()
    state.plan("moved", 100, CONFIG)
    state.plan("still", 100, CONFIG)
    assert state.plan("moved", 100, CONFIG).low
    state.plan("still", 100, CONFIG)
    state.plan("still", 100, CONFIG)
    assert state.plan("changed", 100, CONFIG) == FrameWork(low=True)      # mid-refinement
    again = state.plan("still", 100, CONFIG)
    assert (again.row, again.low, again.upscale_first) == (0, False, True)
    while state.phase is not Phase.DONE:
        state.plan("still", 100, CONFIG)
    assert state.plan("changed", 100, CONFIG) == FrameWork(low=True)      # after the full image
    restarted = state.plan("still", 100, CONFIG)
    assert state.phase is Phase.REFINING and restarted.row == 0 and restarted.upscale_first


def test_the_low_scale_adapts_to_the_budget():
    state = ProgressiveState()
    work = state.plan("moved", 720, CONFIG)
    assert state.low_scale == 4
    state.measured(work, 0.2, CONFIG)              # far over budget: coarser
    assert state.low_scale == 5
    for _ in range(30):
        state.measured(state.plan("moved", 720, CONFIG), 0.2, CONFIG)
    assert state.low_scale == CONFIG.max_low_scale
    state.measured(state.plan("moved", 720, CONFIG), 0.001, CONFIG)   # far under: finer
    assert state.low_scale == CONFIG.max_low_scale - 1
    for _ in range(30):
        state.measured(state.plan("moved", 720, CONFIG), 0.001, CONFIG)
    assert state.low_scale == 1                    # a fast renderer moves at full resolution
