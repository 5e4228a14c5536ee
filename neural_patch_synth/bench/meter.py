"""Wall time and peak memory of one call.

Memory is the *extra* memory a call needed, in MiB:

- CPU: peak resident set size during the call minus the resident size before it. Linux only:
  freed heap memory is first handed back to the system (``gc.collect``, glibc
  ``malloc_trim``), then the peak (``VmHWM``) is reset through ``/proc/self/clear_refs``. It
  sees every allocator (torch, faiss, OpenCV, numpy), unlike ``tracemalloc``. Memory the
  process keeps between calls (loaded weights, caches) is not counted, and what glibc cannot
  hand back is reused uncounted, so it is a lower bound for a fresh process. None where
  ``/proc`` is unavailable.
- CUDA: ``torch.cuda.max_memory_allocated`` after resetting the peak (tensors only, not the
  caching allocator's reserve or the CUDA context).
"""

from __future__ import annotations

import ctypes
import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int:
    for line in STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"{field} not in {STATUS}")


def _reset_peak_rss() -> int | None:
    """Trim the heap, reset the peak RSS to the current RSS; returns that RSS (KiB) or None."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
    try:
        CLEAR_REFS.write_text("5")
        return _status_kib("VmRSS")
    except OSError:
        return None


def measure(fn: Callable[[], T], cuda: bool = False) -> tuple[T, float, float | None]:
    """Run ``fn()``; returns ``(result, seconds, peak extra MiB or None)``."""
    if cuda:
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _reset_peak_rss()
    start = time.perf_counter()
    result = fn()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if cuda:
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = None if base is None else (_status_kib("VmHWM") - base) / 1024
    return result, seconds, peak


def device_name(device: str) -> str:
    """``device`` (``auto``, ``cpu``, ``cuda[:N]``) as a reader of a result needs it: ``cpu``,
    or the GPU's name with the CUDA version torch was built for."""
    import torch

    from neural_patch_synth.api import resolve_device

    resolved = resolve_device(device)
    if resolved.type != "cuda":
        return resolved.type
    name = torch.cuda.get_device_name(resolved.index or 0)
    return f"cuda: {name}, CUDA {torch.version.cuda}"
