"""engine/io.py: atomic files get the usual modes, atomic folders replace an output as a whole."""

import os
import stat

import pytest

from engine.io import OutputFolderError, atomic_dir, atomic_write


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_write_applies_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a.txt") == 0o644


def test_atomic_dir_replaces_an_earlier_output_whole(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out, marker="summary.json") as tmp:
        (tmp / "summary.json").write_text("1")
        (tmp / "old_only.png").write_text("old")
    with atomic_dir(out, marker="summary.json") as tmp:
        (tmp / "summary.json").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]
    assert (out / "summary.json").read_text() == "2"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]       # no temporary folder left


def test_atomic_dir_keeps_the_old_output_when_the_run_fails(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out, marker="summary.json") as tmp:
        (tmp / "summary.json").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(out, marker="summary.json") as tmp:
        (tmp / "summary.json").write_text("half")
        raise RuntimeError("interrupted")
    assert (out / "summary.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_dir_refuses_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "me.jpg").write_text("precious")
    with pytest.raises(OutputFolderError, match="not an earlier output"):
        with atomic_dir(tmp_path / "photos", marker="summary.json"):
            pass
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputFolderError, match="is a file"):
        with atomic_dir(tmp_path / "file", marker="summary.json"):
            pass
    assert (tmp_path / "photos" / "me.jpg").read_text() == "precious"


def test_temporaries_of_killed_runs_are_removed_by_the_next_write(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()                       # a process that has ended
    killed_dir = tmp_path / f".out.{dead}.abcd1234.tmp"
    killed_file = tmp_path / f".grid.npz.{dead}.abcd1234.tmp.npz"
    running = tmp_path / f".out.{os.getpid()}.efgh5678.tmp"               # a live process's: kept
    other = tmp_path / f".out.5.{dead}.abcd1234.tmp"                      # the temporary of "out.5": kept
    for folder in (killed_dir, running, other):
        folder.mkdir()
        (folder / "field.pt").write_text("half")
    killed_file.write_text("half")
    with atomic_dir(tmp_path / "out", marker="summary.json") as tmp:
        (tmp / "summary.json").write_text("new")
    atomic_write(tmp_path / "grid.npz", b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", "grid.npz", running.name, other.name])


def test_writes_of_names_that_never_repeat_keep_no_memory(tmp_path):
    # The view weights' store writes a new name per free camera: a pattern made per name would
    # stay in re's and pathlib's caches (about 2 KB a write, up to their bounds)
    import tracemalloc

    atomic_write(tmp_path / "warm-up.weights", b"x")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(300):
            atomic_write(tmp_path / f"{i:032x}.weights", b"x")
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 50_000, kept
    assert len(list(tmp_path.iterdir())) == 301


@pytest.mark.parametrize("broken_byte", [b"'shape': (", b"}"])
def test_a_damaged_array_header_is_one_of_the_readers_caught_errors(tmp_path, broken_byte):
    """numpy parses an .npy header with ast and, failing that, tokenize: an unclosed bracket raises
    tokenize.TokenError, which every reader must catch as a damaged file (DAMAGED_ARRAY_FILE)."""
    import io
    import zipfile

    import numpy as np

    from engine.errors import UserFacingError
    from engine.io import DAMAGED_ARRAY_FILE
    from systems.segmentation.grid_file import load_mask_grid

    member = io.BytesIO()
    np.save(member, np.array([1, 2, 3]))
    data = bytearray(member.getvalue())
    data[data.index(broken_byte) + len(broken_byte) - 1] = 0      # the bracket that opens or closes
    path = tmp_path / "mask_grid.npz"
    with zipfile.ZipFile(path, "w") as archive:                    # a valid zip (its CRC matches)
        archive.writestr("version.npy", bytes(data))   # the first entry a reader reads
    with pytest.raises(DAMAGED_ARRAY_FILE), np.load(path) as arrays:
        arrays["version"]
    with pytest.raises(UserFacingError, match="mask_grid.npz"):
        load_mask_grid(path)
