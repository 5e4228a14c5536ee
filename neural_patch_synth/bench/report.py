"""What a run leaves in ``--out``: results.json, summary.md, comparison pictures and the plot."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from .datasets import CATEGORIES, Case

Row = dict[str, Any]
METRICS = (  # field, column title, decimals, higher is better
    ("l1", "L1 %", 2, False), ("l2", "L2 %", 2, False), ("psnr", "PSNR dB", 2, True),
    ("ssim", "SSIM", 3, True), ("seconds", "s / image", 2, False), ("peak_mb", "peak MB", 0, False),
)
CATEGORY_METRICS = ("psnr", "ssim", "l1")
PANEL = 256
"""Longest side of one panel of a comparison picture, in pixels."""
COLUMNS = 5
LABEL = 14


def output_path(out: Path, case: Case, method: str) -> Path:
    """Where the filled image of ``case`` by ``method`` is kept for the pictures."""
    return out / "outputs" / case.dataset / f"{case.image_id}-{case.mask_id}" / f"{method}.png"


def _stats(values: Sequence[float]) -> tuple[float, float | None]:
    arr = np.asarray(values, float)
    return float(arr.mean()), (float(arr.std(ddof=1)) if len(arr) > 1 else None)


def _cell(mean: float, std: float | None, decimals: int, bold: bool) -> str:
    text = f"{mean:.{decimals}f}" + ("" if std is None else f" ± {std:.{decimals}f}")
    return f"**{text}**" if bold else text


def _table(header: Sequence[str], groups: dict[str, dict[str, list[float]]],
           columns: Sequence[tuple[str, int, bool]], extra: dict[str, str] | None = None
           ) -> list[str]:
    """Markdown table: one line per group (method), mean ± std per column, best mean bold.

    ``groups``: method → column key → values; ``columns``: (key, decimals, higher is better).
    """
    best = {}
    for key, _, higher in columns:
        means = [np.mean(g[key]) for g in groups.values() if g.get(key)]
        if means:
            best[key] = max(means) if higher else min(means)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, g in groups.items():
        cells = [name] + ([extra[name]] if extra else [])
        for key, decimals, _ in columns:
            if g.get(key):
                mean, std = _stats(g[key])
                bold = len(groups) > 1 and math.isclose(mean, best[key], rel_tol=0, abs_tol=1e-12)
                cells.append(_cell(mean, std, decimals, bold))
            else:
                cells.append("–")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _good(rows: list[Row]) -> list[Row]:
    return [r for r in rows if "error" not in r]


def dataset_tables(rows: list[Row], methods: Sequence[str]) -> list[str]:
    """Per data set: every metric per method."""
    lines: list[str] = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        sub = [r for r in _good(rows) if r["dataset"] == dataset]
        if not sub:
            continue
        images = {r["image"] for r in sub}
        sizes = sorted({f"{r['width']}×{r['height']}" for r in sub})
        hole = 100 * np.mean([r["hole"] for r in sub])
        lines += ["", f"### {dataset}: {len(images)} photo(s), {', '.join(sizes)}, "
                      f"mean hole {hole:.1f} % of the photo", ""]
        present = [m for m in methods if any(r["method"] == m for r in sub)]
        groups = {m: {key: [r[key] for r in sub if r["method"] == m and r.get(key) is not None]
                      for key, *_ in METRICS} for m in present}
        counts = {m: str(sum(r["method"] == m for r in sub)) for m in groups}
        lines += _table(["method", "n"] + [title for _, title, _, _ in METRICS], groups,
                        [(key, dec, hi) for key, _, dec, hi in METRICS], counts)
    return lines


def category_tables(rows: list[Row], methods: Sequence[str]) -> list[str]:
    """Per hole-area category (irregular masks): PSNR, SSIM and L1 per method."""
    sub = [r for r in _good(rows) if r.get("category")]
    cats = [c for c in CATEGORIES if any(r["category"] == c for r in sub)]
    if not cats:
        return []
    lines: list[str] = []
    spec = {key: (title, dec, hi) for key, title, dec, hi in METRICS}
    for key in CATEGORY_METRICS:
        title, dec, hi = spec[key]
        header = ["method"] + [
            f"{c} (n={len({(r['image'], r['mask']) for r in sub if r['category'] == c})})"
            for c in cats]
        groups = {m: {c: [r[key] for r in sub if r["method"] == m and r["category"] == c]
                      for c in cats} for m in methods if any(r["method"] == m for r in sub)}
        lines += ["", f"### {title} by hole-area category (irregular masks)", ""]
        lines += _table(header, groups, [(c, dec, hi) for c in cats])
    return lines


def speed_tables(speed: list[Row]) -> list[str]:
    """End-to-end time per size (nps / PatchMatch ratio) and the patch-search backends."""
    lines: list[str] = []
    e2e = [r for r in speed if r["section"] == "end-to-end" and "error" not in r]
    if e2e:
        names = list(dict.fromkeys(r["method"] for r in e2e))
        ratio = {"nps", "patchmatch"} <= set(names)
        header = (["size"] + [f"{n} s" for n in names] + ["nps / patchmatch"] * ratio
                  + [f"{n} peak MB" for n in names])
        lines += ["", "### End to end: square photo, centred square hole of a quarter of the area",
                  "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for size in sorted({r["size"] for r in e2e}):
            at = {r["method"]: r for r in e2e if r["size"] == size}
            cells = [f"{size}²"] + [f"{at[n]['seconds']:.2f}" if n in at else "–" for n in names]
            if ratio:
                both = "nps" in at and "patchmatch" in at
                cells.append(f"{at['nps']['seconds'] / at['patchmatch']['seconds']:.1f}×"
                             if both else "–")
            cells += [f"{at[n]['peak_mb']:.0f}" if n in at and at[n]["peak_mb"] is not None
                      else "–" for n in names]
            lines.append("| " + " | ".join(cells) + " |")
    search = [r for r in speed if r["section"] == "search"]
    if search:
        lines += ["", "### Patch search backends (`neural_patch_synth.patches.PatchIndex`), "
                  "one search of every hole patch", "",
                  "| size | features | queries × keys × dim | backend | PCA dim | build s | "
                  "search s | agreement | similarity |", "|" + "---|" * 9]
        for r in sorted(search, key=lambda r: r["size"]):
            shape = f"{r['queries']} × {r['keys']} × {r['dim']}"
            head = [f"{r['size']}²", r["features"], shape, r["backend"], str(r["pca_dim"] or "–")]
            if "error" in r:
                tail = [r["error"], "", "", ""]
            else:
                tail = [f"{r['build_s']:.3f}", f"{r['search_s']:.3f}", f"{r['agreement']:.3f}",
                        f"{r['similarity']:.4f}"]
            lines.append("| " + " | ".join(head + tail) + " |")
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
             "", "Mean ± std over photos (no ± for a single photo); best mean per column in bold. "
             "L1 % / L2 %: mean absolute / squared error of the hole pixels in [0, 1], × 100; PSNR "
             "over the hole pixels; SSIM (Gaussian, σ 1.5) on the hole's bounding box; s / image: "
             "wall time of the fill; peak MB: extra peak resident memory of the fill (CPU) or "
             "peak CUDA tensor memory.", "", "Methods:", ""]
    lines += [f"- `{name}`: {desc}" for name, desc in meta["methods"].items()]
    lines += [f"- {note}" for note in notes]
    failed = [r for r in rows if "error" in r]
    if failed:
        lines += ["", f"{len(failed)} fill(s) failed:", ""]
        lines += [f"- {r['method']} on {r['dataset']}/{r['image']}/{r['mask']}: {r['error']}"
                  for r in failed]
    quality = dataset_tables(rows, methods) + category_tables(rows, methods)
    if quality:
        lines += ["", "## Quality"] + quality
    timing = speed_tables(speed)
    if timing:
        lines += ["", "## Speed"] + timing
    path.write_text("\n".join(lines) + "\n")


def write_results(path: Path, meta: dict[str, Any], rows: list[Row], speed: list[Row]) -> None:
    path.write_text(json.dumps({"meta": meta, "rows": rows, "speed": speed}, indent=1) + "\n")


def _panel(image: np.ndarray, label: str) -> Image.Image:
    img = Image.fromarray(image)
    img.thumbnail((PANEL, PANEL), Image.LANCZOS)
    panel = Image.new("RGB", (img.width, img.height + LABEL), "white")
    panel.paste(img, (0, LABEL))
    ImageDraw.Draw(panel).text((2, 1), label, fill="black")
    return panel


def write_picture(path: Path, case: Case, out: Path, methods: Sequence[str]) -> bool:
    """Input with hole | each method's fill | ground truth, ``COLUMNS`` panels per line."""
    image, mask = case.load()
    shown = np.where(mask[..., None], 255, image).astype(np.uint8)
    panels = [_panel(shown, "input")]
    for m in methods:
        filled = output_path(out, case, m)
        if filled.exists():
            panels.append(_panel(np.asarray(Image.open(filled).convert("RGB")), m))
    if len(panels) == 1:
        return False
    panels.append(_panel(image, "ground truth"))
    w, h = panels[0].size
    cols = min(COLUMNS, len(panels))
    sheet = Image.new("RGB", (cols * w, -(-len(panels) // cols) * h), "white")
    for i, p in enumerate(panels):
        sheet.paste(p, ((i % cols) * w, (i // cols) * h))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)
    return True


def write_plot(path: Path, rows: list[Row], methods: Sequence[str]) -> bool:
    """Mean PSNR (± std) against hole-area category, one line per method."""
    sub = [r for r in _good(rows) if r.get("category")]
    if not sub:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cats = [c for c in CATEGORIES if any(r["category"] == c for r in sub)]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for m in methods:
        points = [(i, [r["psnr"] for r in sub if r["method"] == m and r["category"] == c])
                  for i, c in enumerate(cats)]
        points = [(i, v) for i, v in points if v]
        if points:
            xs = [i for i, _ in points]
            ax.errorbar(xs, [np.mean(v) for _, v in points],
                        yerr=[np.std(v) for _, v in points], marker="o", capsize=3, label=m)
    ax.set_xticks(range(len(cats)), cats)
    ax.set_xlabel("hole area (irregular masks)")
    ax.set_ylabel("hole PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
