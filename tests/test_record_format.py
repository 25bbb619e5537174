"""The recording file format: exact round trips, headers, and reading up to the last whole event."""

import enum
import json
from dataclasses import dataclass

import numpy as np
import pytest

from systems.record.codec import CodecError, decode, encode
from systems.record.fileformat import (
    VERSION,
    RecordingError,
    RecordingWriter,
    check_header,
    drop_damaged_tail,
    make_header,
    read_recording,
    write_new,
)


class Label(enum.Enum):
    FOREGROUND = 1
    BACKGROUND = 0


@dataclass(frozen=True)
class Click:
    points: np.ndarray            # [P, 2] float32
    labels: tuple[Label, ...]
    view: str
    box: np.ndarray | None = None


def _header(**overrides):
    fields = {"scene_name": "builtin", "scene_hash": "abc123", "field_path": None, "segmenter": "gt",
              "checkpoint": None, "settings": {"lambda": 5.0, "views": (0, 2)}}
    fields.update(overrides)
    return make_header(**fields)


def _recording(tmp_path, events=3):
    path = tmp_path / "session.jsonl"
    write_new(path, _header())
    writer = RecordingWriter(path)
    for i in range(events):
        click = Click(np.array([[10.25 + i, 3.1]], np.float32), (Label.FOREGROUND,), f"v{i}")
        writer.append(frame=i * 2, t=0.1 * i, kind="message", data=click, sync=i == 0)
    writer.append(frame=9, t=1.0, kind="grids",
                  data={"objects": [{"id": 1, "name": "cube", "sha256": "ff", "shape": (1, 2, 3)}]})
    writer.close()
    return path


def test_values_round_trip_exactly():
    rng = np.random.default_rng(0)
    value = Click(rng.normal(size=(4, 2)).astype(np.float32), (Label.FOREGROUND, Label.BACKGROUND), "r_0",
                  np.array([1, 2, 3, 4], np.float32))
    back = decode(json.loads(json.dumps(encode(value))))
    assert isinstance(back, Click) and back.view == "r_0" and back.labels == value.labels
    assert back.points.dtype == np.float32 and back.points.tobytes() == value.points.tobytes()
    assert back.box.tobytes() == value.box.tobytes()
    T = rng.normal(size=(4, 4))                                    # float64 survives too
    assert decode(json.loads(json.dumps(encode(T)))).tobytes() == T.tobytes()
    assert decode(encode({"a": (1, 2.5, None, True)})) == {"a": (1, 2.5, None, True)}


def test_decoding_refuses_what_is_not_plain_data():
    with pytest.raises(CodecError, match="unknown type"):
        decode({"__dataclass__": "os.system", "fields": {}})
    with pytest.raises(CodecError, match="unknown type"):
        decode({"__dataclass__": "components.nothing_here.Thing", "fields": {}})
    with pytest.raises(CodecError, match="malformed array"):
        decode({"__array__": "<f4", "shape": [3], "data": [1.0]})
    with pytest.raises(TypeError):
        encode(object())


def test_a_recording_reads_back_whole(tmp_path):
    path = _recording(tmp_path)
    recording = read_recording(path)
    assert recording.stop is None and recording.end_offset == path.stat().st_size
    assert recording.header["version"] == VERSION and recording.header["scene"]["hash"] == "abc123"
    assert recording.header["field"]["hash"] == "none"
    assert [e.n for e in recording.events] == [1, 2, 3, 4]
    assert [e.frame for e in recording.events] == [0, 2, 4, 9]
    assert recording.events[1].data.points[0, 0] == np.float32(11.25)
    assert recording.events[3].kind == "grids" and recording.events[3].data["objects"][0]["name"] == "cube"
    assert all(line.startswith(b"{") for line in path.read_bytes().splitlines())


def test_every_cut_of_the_last_lines_reads_up_to_the_last_whole_event(tmp_path):
    path = _recording(tmp_path, events=3)
    raw = path.read_bytes()
    starts = [i + 1 for i, b in enumerate(raw[:-1]) if b == ord("\n")]   # where event lines start
    ends = starts[1:] + [len(raw)]                                       # just past each event line
    for cut in range(starts[-3], len(raw) + 1):
        path.write_bytes(raw[:cut])
        recording = read_recording(path)
        whole = len([end for end in ends if end <= cut])
        assert len(recording.events) == whole, cut
        assert recording.end_offset == max([starts[0]] + [end for end in ends if end <= cut])
        if cut in ends or cut == starts[0]:
            assert recording.stop is None
        else:
            assert recording.stop.offset == recording.end_offset and recording.stop.line == whole + 2
            assert "cut off" in recording.stop.describe(path, whole)


def test_corrupt_lines_and_gaps_stop_the_read(tmp_path):
    path = _recording(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2] + [b'{"n": 2, "frame": oops}\n'] + lines[3:]))
    recording = read_recording(path)
    assert len(recording.events) == 1 and recording.stop.line == 3
    path.write_bytes(b"".join(lines[:2] + lines[3:]))               # event 2 missing
    recording = read_recording(path)
    assert len(recording.events) == 1 and "event number 3 where 2" in recording.stop.reason
    path.write_bytes(b"".join(lines[:2] + [lines[2].replace(b"Click", b"Clack")] + lines[3:]))
    assert "unknown type" in read_recording(path).stop.reason


def test_headers_are_checked(tmp_path):
    path = _recording(tmp_path)
    check_header(read_recording(path), scene_hash="abc123", force=False)
    with pytest.raises(RecordingError, match="given scene has hash zzz.*--force"):
        check_header(read_recording(path), scene_hash="zzz", force=False)
    check_header(read_recording(path), scene_hash="zzz", force=True)
    lines = path.read_bytes().splitlines(keepends=True)
    header = json.loads(lines[0])
    header["version"] = VERSION + 1
    path.write_bytes(json.dumps(header).encode() + b"\n" + b"".join(lines[1:]))
    with pytest.raises(RecordingError, match=f"version {VERSION + 1}.*--force"):
        check_header(read_recording(path), scene_hash=None, force=False)
    for bad in (b"", b"not json\n", b'{"format": "other"}\n', lines[0][:-1]):
        path.write_bytes(bad)
        with pytest.raises(RecordingError, match="not an sa3d recording"):
            read_recording(path)
    with pytest.raises(RecordingError, match="cannot read"):
        read_recording(tmp_path / "missing.jsonl")


def test_a_new_recording_never_overwrites_by_accident(tmp_path):
    path = _recording(tmp_path)
    with pytest.raises(RecordingError, match="already exists"):
        write_new(path, _header())
    write_new(path, _header(), overwrite=True)
    assert read_recording(path).events == ()


def test_field_and_checkpoint_are_identified_by_their_bytes(tmp_path):
    weights = tmp_path / "field.pt"
    weights.write_bytes(b"1234")
    header = _header(field_path=str(weights), checkpoint=str(weights))
    assert header["field"]["hash"] == header["segmenter"]["checkpoint"]
    assert header["field"]["hash"].startswith("03ac674216f3e15c")
    with pytest.raises(RecordingError, match="cannot hash"):
        _header(field_path=str(tmp_path / "nope.pt"))


def test_a_damaged_tail_is_set_aside_before_appending(tmp_path):
    path = _recording(tmp_path)
    raw = path.read_bytes()
    path.write_bytes(raw[:-7])
    recording = read_recording(path)
    kept = drop_damaged_tail(recording)
    assert kept.read_bytes() == raw[recording.end_offset:-7]
    writer = RecordingWriter(path, next_n=len(recording.events) + 1)
    writer.append(frame=20, t=2.0, kind="resumed", data={"created": "now"})
    writer.close()
    again = read_recording(path)
    assert again.stop is None and again.events[-1].kind == "resumed" and len(again.events) == 4
    assert drop_damaged_tail(again) is None
