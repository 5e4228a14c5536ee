"""What a run leaves in ``--out``: results.json, summary.md and the by-category plot.

Every table shows mean ± std per method (means only in the headline tables) with the best mean
in bold: the highest PSNR and SSIM, the lowest errors, SWD and time, and the sharpness and
saturation ratios closest to 1. Missing values (a SWD of a hole too small for a 7×7 patch: NaN
or null) are left out of the means.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from neural_patch_synth.io import write_text

from .datasets import CATEGORIES

Row = dict[str, Any]


class Column(NamedTuple):
    key: str
    title: str
    decimals: int
    best: str
    """``max``, ``min`` or ``one`` (closest to 1)."""


METRICS = (
    Column("l1", "L1 %", 2, "min"), Column("l2", "L2 %", 2, "min"),
    Column("psnr", "PSNR dB", 2, "max"), Column("ssim", "SSIM", 3, "max"),
    Column("sharpness", "sharpness", 2, "one"), Column("swd", "SWD", 2, "min"),
    Column("swd_half", "SWD ½", 2, "min"), Column("saturation", "saturation", 2, "one"),
    Column("seam", "seam", 2, "min"),
    Column("seconds", "s / image", 2, "min"), Column("peak_mb", "peak MB", 0, "min"),
)
BY_KEY = {c.key: c for c in METRICS}
HEADLINE = ("psnr", "ssim", "sharpness", "swd", "swd_half", "saturation", "seam", "seconds")
"""The columns of the compact per-data-set tables meant for the README."""
CATEGORY_METRICS = ("psnr", "ssim", "l1", "sharpness", "swd", "swd_half", "saturation")
PLOT_METRICS = ("psnr", "sharpness", "swd")
TARGET_SIZE = 512
"""Side of the speed case the issue's target is set at (nps at or below PatchMatch)."""
LEGEND = (
    "L1 % / L2 %: mean absolute / squared error of the hole pixels in [0, 1], × 100; PSNR over "
    "the hole pixels; SSIM (Gaussian, σ 1.5) on the hole's bounding box; sharpness: band-pass "
    "RMS (gray minus its σ 1 blur) of the fill over the truth's, in the hole eroded by 3 px (1 = "
    "as sharp as the photo, < 1 blurred, > 1 noisier; best = closest to 1); SWD / SWD ½: sliced "
    "Wasserstein distance × 100 between the fill's and the truth's 7×7 RGB patches (means "
    "removed) inside the hole, at full / half resolution (lower is better; holes too small for "
    "a 7×7 patch are left out); saturation: mean HSV saturation of the fill over the truth's in "
    "the hole (best = closest to 1); seam: mean |step in the fill − step in the truth| across "
    "the hole's boundary (edges between a known and a filled pixel), × 100 (lower is better); "
    "s / image: wall time of the fill; peak MB: extra peak "
    "resident memory of the fill (CPU) or peak CUDA tensor memory.")


def means_table(labels: Sequence[str], groups: dict[tuple[str, ...], list[Row]],
                measures: Sequence[str]) -> list[str]:
    """Markdown lines of a plain table for the benchmark scripts: per group, its label cells
    (one per ``labels`` column), its number of rows and the mean of each of ``measures``
    (keys of the rows, two decimals; over the finite values, as :func:`values`; "–" if none)."""
    lines = ["| " + " | ".join([*labels, "cases", *measures]) + " |",
             "|" + "---|" * (len(labels) + 1 + len(measures))]
    for cells, rows in groups.items():
        means = [f"{np.mean(v):.2f}" if (v := values(rows, k)) else "–" for k in measures]
        lines.append("| " + " | ".join([*cells, str(len(rows)), *means]) + " |")
    return lines


def values(rows: Sequence[Row], key: str) -> list[float]:
    """``key`` of every row that has a finite value for it."""
    return [float(r[key]) for r in rows
            if r.get(key) is not None and math.isfinite(float(r[key]))]


def _stats(vals: Sequence[float]) -> tuple[float, float | None]:
    arr = np.asarray(vals, float)
    return float(arr.mean()), (float(arr.std(ddof=1)) if len(arr) > 1 else None)


def _cell(mean: float, std: float | None, decimals: int, bold: bool) -> str:
    text = f"{mean:.{decimals}f}" + ("" if std is None else f" ± {std:.{decimals}f}")
    return f"**{text}**" if bold else text


def _badness(mean: float, best: str) -> float:
    """Lower is better, whatever the column's rule."""
    return {"max": -mean, "min": mean, "one": abs(mean - 1)}[best]


def _table(header: Sequence[str], groups: dict[str, dict[str, list[float]]],
           columns: Sequence[tuple[str, int, str]], extra: dict[str, str] | None = None,
           spread: bool = True) -> list[str]:
    """Markdown table: one line per group (method), mean (± std with ``spread``) per column,
    best mean bold.

    ``groups``: method → column key → values; ``columns``: (key, decimals, best rule, see
    :class:`Column`); ``extra``: a cell per method after its name.
    """
    best = {}
    for key, _, rule in columns:
        scores = [_badness(float(np.mean(g[key])), rule) for g in groups.values() if g.get(key)]
        if scores:
            best[key] = min(scores)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, g in groups.items():
        cells = [name] + ([extra[name]] if extra else [])
        for key, decimals, rule in columns:
            if g.get(key):
                mean, std = _stats(g[key])
                bold = len(groups) > 1 and math.isclose(_badness(mean, rule), best[key],
                                                        rel_tol=0, abs_tol=1e-12)
                cells.append(_cell(mean, std if spread else None, decimals, bold))
            else:
                cells.append("–")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _good(rows: list[Row]) -> list[Row]:
    return [r for r in rows if "error" not in r]


def _by_dataset(rows: list[Row]) -> dict[str, list[Row]]:
    """The successful rows of each data set, in the order the data sets first appear."""
    good = _good(rows)
    return {d: sub for d in dict.fromkeys(r["dataset"] for r in rows)
            if (sub := [r for r in good if r["dataset"] == d])}


def _dataset_title(dataset: str, sub: list[Row]) -> str:
    images = {r["image"] for r in sub}
    cases = {(r["image"], r["mask"]) for r in sub}
    sizes = sorted({f"{r['width']}×{r['height']}" for r in sub})
    hole = 100 * np.mean([r["hole"] for r in sub])
    return (f"{dataset}: {len(cases)} case(s) on {len(images)} photo(s), {', '.join(sizes)}, "
            f"mean hole {hole:.1f} % of the photo")


def _groups(sub: list[Row], methods: Sequence[str], keys: Sequence[str]
            ) -> dict[str, dict[str, list[float]]]:
    mine = {m: [r for r in sub if r["method"] == m] for m in methods}
    return {m: {key: values(rs, key) for key in keys} for m, rs in mine.items() if rs}


def dataset_tables(rows: list[Row], methods: Sequence[str]) -> list[str]:
    """Per data set: every metric per method, mean ± std."""
    lines: list[str] = []
    for dataset, sub in _by_dataset(rows).items():
        lines += ["", f"### {_dataset_title(dataset, sub)}", ""]
        groups = _groups(sub, methods, [c.key for c in METRICS])
        counts = {m: str(sum(r["method"] == m for r in sub)) for m in groups}
        lines += _table(["method", "n"] + [c.title for c in METRICS], groups,
                        [(c.key, c.decimals, c.best) for c in METRICS], counts)
    return lines


def headline_tables(rows: list[Row], methods: Sequence[str]) -> list[str]:
    """Per data set, the compact README table: :data:`HEADLINE` means per method."""
    lines: list[str] = []
    cols = [BY_KEY[k] for k in HEADLINE]
    for dataset, sub in _by_dataset(rows).items():
        lines += ["", f"### {_dataset_title(dataset, sub)}", ""]
        lines += _table(["method"] + [c.title for c in cols], _groups(sub, methods, HEADLINE),
                        [(c.key, c.decimals, c.best) for c in cols], spread=False)
    return lines


def category_tables(rows: list[Row], methods: Sequence[str]) -> list[str]:
    """Per hole-area category (irregular masks): one table per :data:`CATEGORY_METRICS` key."""
    sub = [r for r in _good(rows) if r.get("category")]
    cats = [c for c in CATEGORIES if any(r["category"] == c for r in sub)]
    if not cats:
        return []
    lines: list[str] = []
    header = ["method"] + [
        f"{c} (n={len({(r['image'], r['mask']) for r in sub if r['category'] == c})})"
        for c in cats]
    for key in CATEGORY_METRICS:
        col = BY_KEY[key]
        groups = {m: {c: values([r for r in sub if r["method"] == m and r["category"] == c], key)
                      for c in cats} for m in methods if any(r["method"] == m for r in sub)}
        lines += ["", f"### {col.title} by hole-area category (irregular masks)", ""]
        lines += _table(header, groups, [(c, col.decimals, col.best) for c in cats])
    return lines


def speed_target(speed: list[Row]) -> str | None:
    """One line: nps and PatchMatch end to end at :data:`TARGET_SIZE`² and their ratio, or
    None when the run lacks either."""
    at = {r["method"]: r["seconds"] for r in speed if r["section"] == "end-to-end"
          and r["size"] == TARGET_SIZE and "error" not in r}
    if not {"nps", "patchmatch"} <= set(at):
        return None
    ratio = at["nps"] / at["patchmatch"]
    verdict = "met" if ratio <= 1 else "not met"
    return (f"**Speed target (nps at or below PatchMatch on a {TARGET_SIZE}² photo with a "
            f"{TARGET_SIZE // 2}² hole, same run, same machine): nps {at['nps']:.2f} s, "
            f"PatchMatch {at['patchmatch']:.2f} s, nps / PatchMatch = {ratio:.2f}× — "
            f"{verdict}.**")


def speed_tables(speed: list[Row]) -> list[str]:
    """End-to-end time per size, with the nps / PatchMatch ratio."""
    lines: list[str] = []
    e2e = [r for r in speed if r["section"] == "end-to-end" and "error" not in r]
    if e2e:
        names = list(dict.fromkeys(r["method"] for r in e2e))
        ratio = {"nps", "patchmatch"} <= set(names)
        header = (["size"] + [f"{n} s" for n in names] + ["nps / patchmatch"] * ratio
                  + [f"{n} peak MB" for n in names])
        target = speed_target(speed)
        lines += ["", "### End to end: square photo, centred square hole of a quarter of the area",
                  "", *([target, ""] if target else []),
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for size in sorted({r["size"] for r in e2e}):
            at = {r["method"]: r for r in e2e if r["size"] == size}
            cells = [f"{size}²"] + [f"{at[n]['seconds']:.2f}" if n in at else "–" for n in names]
            if ratio:
                both = "nps" in at and "patchmatch" in at
                cells.append(f"{at['nps']['seconds'] / at['patchmatch']['seconds']:.2f}×"
                             if both else "–")
            cells += [f"{at[n]['peak_mb']:.0f}" if n in at and at[n]["peak_mb"] is not None
                      else "–" for n in names]
            lines.append("| " + " | ".join(cells) + " |")
    for r in speed:
        if r["section"] == "end-to-end" and "error" in r:
            lines.append(f"\n{r['method']} at {r['size']}² failed: {r['error']}")
    return lines


def _options(options: dict[str, Any] | str) -> str:
    """``{"iterations": [20, 10, 5]}`` → ``iterations=(20, 10, 5)`` (``defaults`` stays)."""
    if isinstance(options, str):
        return options
    return ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v}" for k, v in options.items())


def write_summary(path: Path, meta: dict[str, Any], rows: list[Row], speed: list[Row],
                  methods: Sequence[str], notes: Sequence[str]) -> None:
    lines = [f"# nps bench: {meta['suite']} suite", "",
             f"{meta['finished']}; device {meta['device']} ({meta['cpu']}); torch "
             f"{meta['torch']}; this invocation took {meta['wall_s'] / 60:.1f} min (1-minute load "
             f"average {meta['load'][0]} at its start, {meta['load'][1]} at its end).",
             f"nps settings: {_options(meta['nps'])}; content prior for `auto`: "
             f"{meta['content_prior']}.",
             "", "Mean ± std over cases (no ± for a single case); best mean per column in bold. "
             + LEGEND, "", "Methods:", ""]
    lines += [f"- `{name}`: {desc}" for name, desc in meta["methods"].items()]
    lines += [f"- {note}" for note in notes]
    failed = [r for r in rows if "error" in r]
    if failed:
        lines += ["", f"{len(failed)} fill(s) failed:", ""]
        lines += [f"- {r['method']} on {r['dataset']}/{r['image']}/{r['mask']}: {r['error']}"
                  for r in failed]
    target = speed_target(speed)
    headline = headline_tables(rows, methods)
    if headline or target:
        lines += ["", "## Headline (means; for the README)"]
        lines += ["", target] if target else []
        lines += headline
    quality = dataset_tables(rows, methods) + category_tables(rows, methods)
    if quality:
        lines += ["", "## Quality"] + quality
    timing = speed_tables(speed)
    if timing:
        lines += ["", "## Speed"] + timing
    write_text(path, "\n".join(lines) + "\n")


def write_results(path: Path, meta: dict[str, Any], rows: list[Row], speed: list[Row]) -> None:
    write_text(path, json.dumps({"meta": meta, "rows": rows, "speed": speed}, indent=1) + "\n")


def write_plot(path: Path, rows: list[Row], methods: Sequence[str]) -> bool:
    """Mean (± std) of each :data:`PLOT_METRICS` key against hole-area category, one panel per
    metric, one line per method."""
    sub = [r for r in _good(rows) if r.get("category")]
    if not sub:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cats = [c for c in CATEGORIES if any(r["category"] == c for r in sub)]
    fig, axes = plt.subplots(1, len(PLOT_METRICS), figsize=(5 * len(PLOT_METRICS), 4.5))
    for ax, key in zip(axes, PLOT_METRICS, strict=True):
        for m in methods:
            points = [(i, values([r for r in sub if r["method"] == m and r["category"] == c],
                                 key)) for i, c in enumerate(cats)]
            points = [(i, v) for i, v in points if v]
            if points:
                ax.errorbar([i for i, _ in points], [np.mean(v) for _, v in points],
                            yerr=[np.std(v) for _, v in points], marker="o", capsize=3, label=m)
        if BY_KEY[key].best == "one":
            ax.axhline(1.0, color="gray", linewidth=0.8, linestyle="--")
        ax.set_xticks(range(len(cats)), cats)
        ax.set_xlabel("hole area (irregular masks)")
        ax.set_ylabel(BY_KEY[key].title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
