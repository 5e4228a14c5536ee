"""Wall time and peak memory of one call.

Memory is the *extra* memory a call needed, in MiB:

- CPU: peak resident set size during the call minus the resident size before it. Linux only:
  the peak (``VmHWM``) is reset through ``/proc/self/clear_refs`` before the call. It sees
  every allocator (torch, faiss, OpenCV, numpy), unlike ``tracemalloc``; memory the process
  already held from earlier calls and reuses is not counted again, so it is a lower bound for
  a fresh process. None where ``/proc`` is unavailable.
- CUDA: ``torch.cuda.max_memory_allocated`` after resetting the peak (tensors only, not the
  caching allocator's reserve or the CUDA context).
"""

from __future__ import annotations

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
    """Reset the peak RSS to the current RSS; returns the current RSS (KiB) or None."""
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
