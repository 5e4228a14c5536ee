"""Timing of hole grouping (:func:`neural_patch_synth.masks.hole_groups`) on dust-like masks.

    python -m neural_patch_synth.bench.groups [--specks 20000] [--size 8000x6000]
        [--largest 3] [--context 2.0] [--min-side 0] [--repeat 3] [--seed 0]

Scatters ``--specks`` rectangles of sides 1…``--largest`` px over a ``--size`` (WxH) mask and
prints the best of ``--repeat`` wall-clock times of connected-component labelling alone and of
the whole grouping, with the number of groups.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage

from neural_patch_synth.errors import NPSError
from neural_patch_synth.io import parse_size
from neural_patch_synth.masks import hole_groups


def speck_mask(rng: np.random.Generator, shape: tuple[int, int], count: int,
               largest: int) -> np.ndarray:
    """``(H, W)`` bool mask of ``count`` random rectangles of sides 1…``largest`` (dust,
    scratches), drawn from ``rng``."""
    mask = np.zeros(shape, bool)
    ys, xs = rng.integers(0, shape[0], count), rng.integers(0, shape[1], count)
    for y, x, h, w in zip(ys, xs, *rng.integers(1, largest + 1, (2, count)), strict=True):
        mask[y:y + h, x:x + w] = True
    return mask


def best_time(fn, repeat: int) -> float:
    """Shortest wall-clock time of ``repeat`` calls of ``fn()``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specks", type=int, default=20000)
    parser.add_argument("--size", default="8000x6000", help="mask size WxH")
    parser.add_argument("--largest", type=int, default=3, help="largest speck side (px)")
    parser.add_argument("--context", type=float, default=2.0)
    parser.add_argument("--min-side", type=int, default=0, help="smallest context window")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        width, height = parse_size(args.size, "--size")
    except NPSError as err:
        raise SystemExit(f"groups: {err}") from None
    mask = speck_mask(np.random.default_rng(args.seed), (height, width), args.specks,
                      args.largest)
    holes = ndimage.label(mask, structure=np.ones((3, 3), bool))[1]
    groups = hole_groups(mask, args.context, args.min_side)
    label = best_time(lambda: ndimage.label(mask, structure=np.ones((3, 3), bool)), args.repeat)
    total = best_time(lambda: hole_groups(mask, args.context, args.min_side), args.repeat)
    print(f"{args.specks} specks on {width}x{height}: {holes} holes, {len(groups)} groups; "
          f"labelling {label:.2f} s, grouping in all {total:.2f} s "
          f"(best of {args.repeat})")


if __name__ == "__main__":
    main()
