"""Two ``nps bench`` runs of the same cases compared case by case.

    python -m neural_patch_synth.bench.paired OUT_A OUT_B [--method nps]

For every data set and measure: the means of ``A`` and ``B``, ``A``'s advantage per case
(positive: ``A`` better; for the ratios, how much closer to 1) as mean ± standard error over
the cases both runs filled, and the cases where ``A`` is better. Prints markdown.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neural_patch_synth.errors import NPSError

from .report import METRICS, Row, _badness
from .run import latest_rows

MEASURES = tuple(c for c in METRICS if c.key not in ("seconds", "peak_mb"))
"""The quality measures (time and memory are not paired)."""


def _cases(out: Path, method: str) -> dict[tuple[str, str, str], Row]:
    rows = [r for r in latest_rows(out) if r["method"] == method and "error" not in r]
    if not rows:
        raise NPSError(f"no rows of {method} in {out}")
    return {(r["dataset"], r["image"], r["mask"]): r for r in rows}


def paired_tables(a: dict[tuple[str, str, str], Row], b: dict[tuple[str, str, str], Row],
                  labels: Sequence[str] = ("A", "B")) -> list[str]:
    """Markdown lines, a table per data set, for the cases in both ``a`` and ``b`` (rows keyed
    by data set, photo and mask)."""
    lines: list[str] = []
    for dataset in dict.fromkeys(k[0] for k in a):
        keys = [k for k in a if k[0] == dataset and k in b]
        if not keys:
            continue
        lines += [f"### {dataset}: {len(keys)} case(s)", "",
                  f"| measure | {labels[0]} | {labels[1]} | {labels[0]}'s advantage | "
                  f"{labels[0]} better in |", "|---|---|---|---|---|"]
        for col in MEASURES:
            pairs = [(float(a[k][col.key]), float(b[k][col.key])) for k in keys
                     if a[k].get(col.key) is not None and b[k].get(col.key) is not None
                     and math.isfinite(float(a[k][col.key]))
                     and math.isfinite(float(b[k][col.key]))]
            if not pairs:
                continue
            x = np.array(pairs)
            gain = np.array([_badness(vb, col.best) - _badness(va, col.best) for va, vb in pairs])
            se = gain.std(ddof=1) / math.sqrt(len(gain)) if len(gain) > 1 else float("nan")
            d = col.decimals + 1
            lines.append(f"| {col.title} | {x[:, 0].mean():.{d}f} | {x[:, 1].mean():.{d}f} | "
                         f"{gain.mean():+.{d}f} ± {se:.{d}f} | {(gain > 0).sum()} / {len(gain)} |")
        lines.append("")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="first run's --out folder")
    parser.add_argument("b", type=Path, help="second run's --out folder")
    parser.add_argument("--method", default="nps", help="method compared (default nps)")
    args = parser.parse_args(argv)
    try:
        tables = paired_tables(_cases(args.a, args.method), _cases(args.b, args.method),
                               (args.a.name, args.b.name))
    except NPSError as e:
        raise SystemExit(f"error: {e}") from None
    print("\n".join(tables))


if __name__ == "__main__":
    main()
