"""Memory estimates made before large allocations: a request that cannot fit is refused up front.

`require(bytes, ...)` compares an estimate with the memory the device has free now (Linux
MemAvailable for the CPU, cudaMemGetInfo for CUDA) and raises MemoryEstimateError naming the
estimate, what is free and a setting that fits. The estimates are linear models fitted to the
peaks that bench/bench_field.py measured (README, "Radiance field"), not exact accounting.
`release_free_heap()` hands the C heap's free pages back to the system after large work;
`return_large_blocks()` makes large blocks go back to it as soon as they are freed;
`resident_parts()` splits a process's memory into what a long session's growth could be.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import sys

from engine.errors import UserFacingError

GB = 1 << 30
TRAIN_BYTES_PER_VOXEL = 220     # grids, gradients, Adam moments, occupancy and TV temporaries
TRAIN_BYTES_PER_PIXEL = 40      # training rays: origin, direction, colour as float32, plus index
BASE_BYTES = 512 << 20          # torch, the scene's arrays and the interpreter
VIEW_WEIGHTS_BYTES_PER_PIXEL = 200   # a view's sparse pixel->voxel matrix: 38 MB at 504x378 (README, SA3D)
BUILTIN_BYTES_PER_PIXEL = 6 * 60 + 256   # its 60 views' images (read and kept), one view's ray tracing


class MemoryEstimateError(UserFacingError):
    """A request whose estimated memory exceeds what the machine has free."""


def available_bytes(device: str = "cpu") -> int:
    """Bytes free for a new allocation on `device` now ("cpu": MemAvailable, else CUDA's free memory)."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info()[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def require(need: int, what: str, fix: str, device: str = "cpu") -> None:
    """Raise MemoryEstimateError when `need` bytes (an estimate for `what`) exceed the free memory;
    `fix` says which setting fits (it may use {free_gb})."""
    free = available_bytes(device)
    if need > free:
        raise MemoryEstimateError(f"{what} needs about {need / GB:.1f} GB but {device} has {free / GB:.1f} GB "
                                  f"free: {fix.format(free_gb=free / GB)}")


def training_bytes(resolution: int, pixels: int) -> int:
    """Estimated peak of training a field of about resolution**3 voxels on `pixels` training pixels."""
    return BASE_BYTES + resolution ** 3 * TRAIN_BYTES_PER_VOXEL + pixels * TRAIN_BYTES_PER_PIXEL


def largest_resolution(free: int, pixels: int) -> int:
    """The largest grid resolution whose training_bytes fits in `free` bytes (at least 8)."""
    room = max(0, free - BASE_BYTES - pixels * TRAIN_BYTES_PER_PIXEL)
    return max(8, int(math.floor((room / TRAIN_BYTES_PER_VOXEL) ** (1.0 / 3.0))))


def check_training(resolution: int, pixels: int, device: str) -> None:
    """Refuse training at `resolution` when its estimate does not fit on `device`."""
    need = training_bytes(resolution, pixels)
    free = available_bytes(device)
    if need > free:
        raise MemoryEstimateError(
            f"training a grid of about {resolution}^3 voxels needs about {need / GB:.1f} GB but {device} has "
            f"{free / GB:.1f} GB free: use --resolution {largest_resolution(free, pixels)} or lower "
            f"(or a larger --downscale)")


def check_view_weights(views: int, H: int, W: int, device: str = "cpu") -> None:
    """Refuse a segmentation whose `views` views' weights at H x W cannot be held in memory."""
    need = BASE_BYTES + views * H * W * VIEW_WEIGHTS_BYTES_PER_PIXEL
    require(need, f"the view weights of {views} views at {W}x{H}",
            "use a larger --downscale (each halving needs a quarter)", device)


def check_builtin(size: int) -> None:
    """Refuse generating the built-in scene at `size` x `size` pixels when it cannot fit."""
    require(BASE_BYTES + size * size * BUILTIN_BYTES_PER_PIXEL, f"the built-in scene at {size}x{size}",
            "use a smaller builtin-<size> (the default is 128)")


@functools.cache
def _libc_function(name: str):
    """The C library's function `name` (a glibc extension such as malloc_trim), or None where this
    C library lacks it."""
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None


M_MMAP_THRESHOLD = -3                 # glibc mallopt's parameter number (malloc.h)
LARGE_BLOCK_BYTES = 1 << 20


def return_large_blocks(threshold: int = LARGE_BLOCK_BYTES) -> bool:
    """Serve every allocation of `threshold` bytes or more with its own mapping, handed back to the
    system when freed (glibc mallopt M_MMAP_THRESHOLD; a fixed threshold also stops glibc from
    raising it after the first such free); False where unavailable. For a long session whose
    background worker frees large arrays in its own thread's arena, where release_free_heap's trim
    leaves them: bench/bench_soak.py's RSS at its cycle starts wandered over 160 MB without it
    (30 minutes), about 20 MB with it (5 minutes)."""
    mallopt = _libc_function("mallopt")
    return mallopt is not None and bool(mallopt(M_MMAP_THRESHOLD, int(threshold)))


def release_free_heap() -> bool:
    """Return the C heap's free pages to the system (glibc malloc_trim); False where unavailable.

    Once a few MB arrays have been freed, glibc raises its mmap threshold and carves later arrays
    of that size from the heap, and free() keeps those pages: over a viewer session that retained
    memory (50-85 MB in bench/bench_soak.py) read as growth, though the live memory was flat.
    """
    trim = _libc_function("malloc_trim")
    if trim is None:
        return False
    trim(0)
    return True


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


@functools.cache
def _mallinfo2():
    """glibc's mallinfo2 (2.33 and later), returning a _MallInfo2, or None."""
    function = _libc_function("mallinfo2")
    if function is not None:
        function.restype = _MallInfo2
    return function


STATUS_FIELDS = {"VmRSS": "rss_mb", "RssAnon": "rss_anon_mb", "RssFile": "rss_file_mb"}


def resident_parts() -> dict[str, float]:
    """This process's memory in MB by where a growth would live: resident in all, anonymous (heaps,
    arrays) and file-backed (libraries, mapped files) (Linux /proc/self/status); the C heap's
    chunks in use and free, and the large blocks mapped on their own (glibc mallinfo2, summed over
    every thread's arena); and the Python objects' blocks (a count). Parts unavailable here are left out."""
    parts: dict[str, float] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in STATUS_FIELDS:
                    parts[STATUS_FIELDS[key]] = round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    mallinfo2 = _mallinfo2()
    if mallinfo2 is not None:
        info = mallinfo2()
        parts.update(heap_in_use_mb=round(info.uordblks / 2**20, 1), heap_free_mb=round(info.fordblks / 2**20, 1),
                     heap_mapped_mb=round(info.hblkhd / 2**20, 1))
    parts["python_blocks"] = sys.getallocatedblocks()
    return parts
