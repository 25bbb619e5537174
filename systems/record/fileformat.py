"""The recording file: versioned JSON lines, append-only, readable up to the last whole event.

Line 1, the header (one JSON object):
    {"format": "sa3d-recording", "version": 1, "app_version": "0.1.0", "created": ISO-8601 UTC,
     "scene": {"name", "hash"}, "field": {"path", "hash"}, "segmenter": {"name", "checkpoint", "source"},
     "settings": {...}, "objects": [...], "device": "cpu" | "cuda"}
    objects: the objects that already existed (as in a "grids" event; empty for a whole session).
    device: where the field ran (absent in early files: "cpu"). Grids replay bit for bit on the
    device they were recorded on; another device rounds differently.
    determinism: {"torch_threads", "dtype", "torch", "numpy", "scipy"}, the settings that change the
    bits (systems/record/determinism.py; absent in early files); replay applies the thread count.
    field / checkpoint hashes are sha256 of the file bytes, or "none" (a SAM segmenter without a
    named file gives its own identity); segmenter "source" = the weights file or the gt mask folder.
Every further line, one event:
    {"n": 1, "frame": 12, "t": 0.532, "kind": KIND, "data": {...}}
    n counts events from 1 without gaps; frame is the App frame (counted from the session start);
    t the seconds since the session start; KIND one of EVENT_KINDS:
      "message"  data = {"type": "module.QualName", "message": encoded dataclass} (systems/record/codec.py)
      "settings" data = the encoded SegmentationSettings now in force (changed in the session)
      "camera"   data = {"K" [3,3], "T_world_camera" [4,4], "H", "W", "view"} (thinned camera path)
      "grids"    data = {"objects": [{"id", "name", "color", "channel", "sha256", "inside", "shape"}]}
                 sha256 of each object's votes [Z,Y,X] float32 bytes, inside = voxels with votes > 0
      "resumed"  data = {"created": ISO-8601 UTC} (a session continued from this file)
Each line ends with "\n"; a line without its newline, that is not JSON, or that breaks the
numbering is where reading stops.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import UserFacingError
from engine.io import atomic_write, file_sha256
from systems.record.codec import CodecError, decode, encode, type_name

FORMAT = "sa3d-recording"
VERSION = 1
APP_VERSION = "0.1.0"
EVENT_KINDS = ("message", "settings", "camera", "grids", "resumed")
_HEADER_KEYS = ("app_version", "created", "scene", "field", "segmenter", "settings")


class RecordingError(UserFacingError):
    """A recording that cannot be read, written or replayed; the message says what to do."""


@dataclass(frozen=True)
class Event:
    n: int           # 1, 2, ... in file order
    frame: int       # App frame since the session started
    t: float         # seconds since the session started
    kind: str        # one of EVENT_KINDS
    data: Any        # decoded: a message object for "message", else a dict


@dataclass(frozen=True)
class StopPoint:
    line: int        # 1-based line number of the first line not read
    offset: int      # byte offset where that line starts
    reason: str      # what is wrong with it

    def describe(self, path: Path, events: int) -> str:
        return (f"{path}: stopped at line {self.line} (byte {self.offset}): {self.reason}; "
                f"using the {events} whole events before it")


@dataclass(frozen=True)
class Recording:
    path: Path
    header: dict
    events: tuple[Event, ...]
    end_offset: int              # byte just past the last whole event
    stop: StopPoint | None       # None when the whole file was read


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def file_hash(path: str | os.PathLike | None) -> str:
    """sha256 (hex) of a file's bytes, "none" for no path; raises RecordingError if it is missing."""
    if path is None:
        return "none"
    try:
        return file_sha256(path)
    except OSError as error:
        raise RecordingError(f"cannot hash {path} for the recording header ({error.strerror})") from None


def make_header(*, scene_name: str, scene_hash: str, field_path: str | None, segmenter: str,
                checkpoint: str | None, settings: object) -> dict:
    """The header line: format and app version, scene, field, segmenter identity and settings."""
    return {"format": FORMAT, "version": VERSION, "app_version": APP_VERSION, "created": now_iso(),
            "scene": {"name": scene_name, "hash": scene_hash},
            "field": {"path": None if field_path is None else str(field_path), "hash": file_hash(field_path)},
            "segmenter": {"name": segmenter, "checkpoint": file_hash(checkpoint)},
            "settings": encode(settings)}


def encode_event(n: int, frame: int, t: float, kind: str, data: Any) -> bytes:
    """One event as a line of bytes (with its newline). `data` of a "message" event is the message."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    if kind == "message":
        data = {"type": type_name(type(data)), "message": encode(data)}
    else:
        data = encode(data)
    line = {"n": n, "frame": int(frame), "t": round(float(t), 4), "kind": kind, "data": data}
    return (json.dumps(line, separators=(",", ":")) + "\n").encode()


def read_recording(path: str | os.PathLike) -> Recording:
    """Read a recording up to its last whole event.

    Raises RecordingError when the file is missing or its header is not a recording header. A
    cut-off or corrupt event line ends the read: `Recording.stop` says where and why.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise RecordingError(f"cannot read recording {path} ({error.strerror}): check the path") from None
    header_end = raw.find(b"\n")
    header = _parse_header(path, raw[:header_end] if header_end >= 0 else b"")
    events: list[Event] = []
    offset, line_no, stop = header_end + 1, 2, None
    while offset < len(raw):
        end = raw.find(b"\n", offset)
        if end < 0:
            stop = StopPoint(line_no, offset, f"the line is cut off after {len(raw) - offset} bytes")
            break
        try:
            events.append(_parse_event(raw[offset:end], expected_n=len(events) + 1))
        except (ValueError, TypeError, CodecError) as error:
            stop = StopPoint(line_no, offset, str(error))
            break
        offset, line_no = end + 1, line_no + 1
    return Recording(path, header, tuple(events), min(offset, len(raw)), stop)


def check_header(recording: Recording, *, scene_hash: str | None, force: bool) -> None:
    """Refuse a recording of a newer format version, or of another scene than `scene_hash`.

    Raises RecordingError naming the difference and the override (--force) unless `force`.
    """
    version = recording.header.get("version")
    if not force and (not isinstance(version, int) or version > VERSION):
        raise RecordingError(f"{recording.path} is recording format version {version}, this sa3d reads "
                             f"up to {VERSION}: update sa3d, or pass --force to try anyway")
    recorded = recording.header.get("scene", {})
    if not force and scene_hash is not None and recorded.get("hash") != scene_hash:
        raise RecordingError(f"{recording.path} was recorded on scene '{recorded.get('name')}' (hash "
                             f"{recorded.get('hash')}), the given scene has hash {scene_hash}: pass that "
                             f"scene with --scene, or --force to replay anyway")


def write_new(path: str | os.PathLike, header: dict, *, overwrite: bool = False) -> None:
    """Start a recording file holding just `header` (atomic).

    Raises RecordingError when `path` exists and `overwrite` is false.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise RecordingError(f"{path} already exists: choose another file, or continue that session "
                             f"(open it with the viewer's --continue)")
    atomic_write(path, json.dumps(header, separators=(",", ":")) + "\n")


def drop_damaged_tail(recording: Recording) -> Path | None:
    """Cut a damaged tail off the file (kept beside it as FILE.damaged-<offset>) so appends follow
    the last whole event; returns where the tail went, or None when there was none."""
    size = recording.path.stat().st_size
    if size <= recording.end_offset:
        return None
    kept = recording.path.with_name(f"{recording.path.name}.damaged-{recording.end_offset}")
    with open(recording.path, "rb") as f:
        f.seek(recording.end_offset)
        atomic_write(kept, f.read())
    os.truncate(recording.path, recording.end_offset)
    return kept


class RecordingWriter:
    """Appends events to a recording file, one line each, flushed as written; fsync'd on request."""

    def __init__(self, path: str | os.PathLike, *, next_n: int = 1) -> None:
        self.path = Path(path)
        self.next_n = next_n
        self._file = open(self.path, "ab")  # noqa: SIM115  (held open while recording; close())

    def append(self, frame: int, t: float, kind: str, data: Any, *, sync: bool = False) -> None:
        """Write one event (see encode_event); `sync` also fsyncs it to the disk."""
        self._file.write(encode_event(self.next_n, frame, t, kind, data))
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())
        self.next_n += 1

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


def _parse_header(path: Path, line: bytes) -> dict:
    try:
        header = json.loads(line)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise RecordingError(f"{path} is not an sa3d recording (its first line is not a recording "
                             f"header): record one with `python main.py view --record FILE`")
    missing = [k for k in _HEADER_KEYS if k not in header]
    if missing and header.get("version") == VERSION:
        raise RecordingError(f"{path}: the recording header lacks {', '.join(missing)}: the file is "
                             f"damaged; record the session again")
    try:
        header["settings"] = decode(header.get("settings"))
        header["objects"] = decode(header.get("objects", []))
    except CodecError as error:
        raise RecordingError(f"{path}: the recording header's settings cannot be read ({error}): "
                             f"replay it with the sa3d version that recorded it") from None
    return header


def _parse_event(line: bytes, *, expected_n: int) -> Event:
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise TypeError("the line is not a JSON object")
    missing = [k for k in ("n", "frame", "t", "kind", "data") if k not in obj]
    if missing:
        raise ValueError(f"the event lacks {', '.join(missing)}")
    if obj["n"] != expected_n:
        raise ValueError(f"event number {obj['n']} where {expected_n} was expected")
    kind, data = obj["kind"], obj["data"]
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    if kind == "message":
        if not isinstance(data, dict) or "message" not in data:
            raise ValueError("a message event without its message")
        data = decode(data["message"])
    else:
        data = decode(data)
    return Event(int(obj["n"]), int(obj["frame"]), float(obj["t"]), kind, data)
