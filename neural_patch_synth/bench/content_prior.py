"""Content-prior benchmark: hole PSNR and fine texture at 128² for networks vs classical fills.

    python -m neural_patch_synth.bench.content_prior [--weights [LABEL=]PATH ...] [--n N]

Per data set (``places128/val`` and ``scenes/val``, a fixed subset of centre 128² crops): a 64²
centre hole, and the irregular masks of ``masks/irregular`` (512² PNG, white = hole) resized to
128², one row per hole-area category, and generated irregular masks that touch the border
(outpainting-style, 20–30 % of the image, as ``nps masks --border`` makes). Methods: each
network given, mean-colour fill, OpenCV Telea (radius 3) and the smooth (push-pull) prior.
Besides hole PSNR and L1 it reports the *fine texture* of the centre-hole fills: the sharpness
ratio of :mod:`.metrics` (band-pass RMS of the fill over the truth's, hole eroded by 3 px; a
smooth fill scores near 0.2, speckle or noise above 1). ``--sheet`` writes a picture of the
first 20 centre-hole fills of the networks and Telea. Prints markdown tables and writes JSON.
The data root is ``--data``, else ``$NPS_DATA``, else ``../shared/data``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from neural_patch_synth.bench.datasets import CATEGORIES, data_root
from neural_patch_synth.bench.metrics import sharpness_ratio
from neural_patch_synth.bench.sheets import checkered, grid, labelled, save_picture
from neural_patch_synth.errors import NPSError
from neural_patch_synth.io import write_text
from neural_patch_synth.masks import centre_square_mask, random_mask
from neural_patch_synth.prior import shipped_weights
from neural_patch_synth.prior.layers import SIZE, mean_fill
from neural_patch_synth.prior.network import NetworkPrior
from neural_patch_synth.prior.smooth import smooth_fill
from neural_patch_synth.prior.train import hole_psnr, validation_set

SETS = ("places128/val", "scenes/val")
"""Validation folders under the data root."""
SHEET_IMAGES = 20
BORDER_CATEGORY = 2
"""Area category (20–30 %) of the generated border-touching masks."""

Fill = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``fill(images, masks)``: ``(B, 3, 128, 128)`` in ``[0, 1]``, ``(B, 1, 128, 128)`` 1 = hole."""


def telea(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """OpenCV Telea inpainting (radius 3) of each image, on 8-bit copies."""
    import cv2

    out = []
    for img, m in zip(images, masks, strict=True):
        rgb = (img.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
        hole = (m[0].numpy() > 0.5).astype(np.uint8)
        out.append(torch.from_numpy(cv2.inpaint(rgb, hole, 3, cv2.INPAINT_TELEA)))
    return torch.stack(out).permute(0, 3, 1, 2).float() / 255.0


def network_fill(prior: NetworkPrior, chunk: int = 50) -> Fill:
    """``prior`` as a :data:`Fill`, in batches of ``chunk``."""
    return lambda x, m: torch.cat([prior(a, b) for a, b in zip(x.split(chunk), m.split(chunk),
                                                                 strict=True)])


def composite(fill: Fill, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``fill``'s result in the hole, ``images`` outside, clamped to ``[0, 1]``."""
    return fill(images, masks).clamp(0, 1) * masks + images * (1 - masks)


def fine_texture(out: torch.Tensor, images: torch.Tensor, masks: torch.Tensor) -> float:
    """Mean sharpness ratio (fill over truth band-pass RMS) of ``out`` ``(B, 3, H, W)``."""
    def hwc(t: torch.Tensor) -> np.ndarray:
        return t.permute(1, 2, 0).numpy()

    return float(np.mean([sharpness_ratio(hwc(o), hwc(t), m[0].numpy() > 0.5)
                          for o, t, m in zip(out, images, masks, strict=True)]))


def score(fills: dict[str, Fill], images: torch.Tensor, masks: torch.Tensor,
          texture: bool = False) -> dict[str, dict[str, float]]:
    """Per method: mean hole PSNR (dB), hole L1 (% of range), seconds per image and, with
    ``texture``, the mean fine-texture ratio."""
    result = {}
    for name, fill in fills.items():
        start = time.perf_counter()
        out = composite(fill, images, masks)
        seconds = (time.perf_counter() - start) / len(images)
        l1 = ((out - images).abs() * masks).sum(dim=(1, 2, 3)) / (3 * masks.sum(dim=(1, 2, 3)))
        result[name] = {"psnr": float(hole_psnr(out, images, masks).mean()),
                        "l1_percent": float(100 * l1.mean()), "seconds_per_image": seconds}
        if texture:
            result[name]["fine_texture"] = fine_texture(out, images, masks)
    return result


def irregular_masks(folder: Path, category: int, count: int) -> torch.Tensor:
    """First ``count`` masks of an area category, resized to 128²: ``(count, 1, 128, 128)``."""
    files = sorted(p for p in folder.glob("*.png") if int(p.stem) // 2000 == category)[:count]
    if not files:
        raise NPSError(f"no masks of category {category} in {folder}")
    masks = []
    for f in files:
        with Image.open(f) as im:
            small = im.convert("L").resize((SIZE, SIZE), Image.BILINEAR)
        masks.append(np.asarray(small) >= 128)
    return torch.from_numpy(np.stack(masks)[:, None]).float()


def border_masks(count: int, seed: int = 0) -> torch.Tensor:
    """``count`` generated irregular masks of :data:`BORDER_CATEGORY` that start on the image
    edge (:func:`~neural_patch_synth.masks.random_mask` with ``border``), seeded:
    ``(count, 1, 128, 128)``."""
    rng = np.random.default_rng(seed)
    masks = [random_mask(SIZE, BORDER_CATEGORY, rng, border=True) for _ in range(count)]
    return torch.from_numpy(np.stack(masks)[:, None]).float()


def table(rows: dict[str, dict[str, dict[str, float]]], key: str, title: str,
          best: Callable[..., float] | None = max) -> str:
    """Markdown table: one row per test, one column per method, ``key`` values; the
    ``best`` (``max``, ``min`` or None) of each row in bold."""
    names = list(next(iter(rows.values())))
    lines = [f"| {title} | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for row, res in rows.items():
        top = best(res[n][key] for n in names) if best else None
        cells = [f"**{res[n][key]:.2f}**" if res[n][key] == top else f"{res[n][key]:.2f}"
                 for n in names]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_sheet(path: Path, fills: dict[str, Fill], images: torch.Tensor,
                masks: torch.Tensor) -> None:
    """Two images per row, each as the input (hole checkered), every fill and the truth."""
    def png(t: torch.Tensor) -> np.ndarray:
        return (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)

    def panel(pixels: np.ndarray, label: str) -> Image.Image:
        return labelled(Image.fromarray(pixels), label)

    outs = {name: composite(fill, images, masks) for name, fill in fills.items()}
    panels = []
    for i in range(len(images)):
        panels.append(panel(checkered(png(images[i]), masks[i, 0].numpy() > 0.5), "input"))
        panels += [panel(png(out[i]), name) for name, out in outs.items()]
        panels.append(panel(png(images[i]), "truth"))
    save_picture(grid(panels, 2 * (len(fills) + 2)), path)


def parse_weights(specs: list[str]) -> dict[str, Path]:
    """``[LABEL=]PATH`` strings → label → path (label default: ``network``, then the stem)."""
    result = {}
    for i, spec in enumerate(specs):
        label, sep, path = spec.partition("=")
        if not sep:
            label, path = ("network" if i == 0 else Path(spec).stem), spec
        result[label] = Path(path)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", nargs="+", metavar="[LABEL=]PATH",
                        help="content-network weights to compare (default: the shipped ones)")
    parser.add_argument("--data", help="data root (default $NPS_DATA or ../shared/data)")
    parser.add_argument("--n", type=int, default=200, help="val images per set (default 200)")
    parser.add_argument("--per-category", type=int, default=50,
                        help="irregular masks per area category (default 50)")
    parser.add_argument("--json", default="bench-out/content_prior.json",
                        help="JSON output path")
    parser.add_argument("--sheet", help="write the first 20 centre-hole fills of places128/val "
                                        "to this JPEG")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    record: dict = {"n_images": args.n, "masks_per_category": args.per_category,
                    "threads": args.threads, "sets": {}}
    try:
        root = data_root(args.data)
        shipped = shipped_weights()
        weights = parse_weights(args.weights or ([str(shipped)] if shipped else []))
        if not weights:
            raise NPSError("no content-network weights: pass --weights")
        fills: dict[str, Fill] = {}
        for label, path in weights.items():
            if not path.exists():
                raise NPSError(f"content-network weights not found: {path}")
            fills[label] = network_fill(NetworkPrior.from_file(path, torch.device("cpu")))
        fills |= {"mean colour": mean_fill, "Telea (OpenCV)": telea,
                  "smooth prior": smooth_fill}
        record["weights"] = {label: str(path) for label, path in weights.items()}
        centre = torch.from_numpy(centre_square_mask(SIZE, SIZE // 2)).float()[None, None]
        hole_sets = {f"irregular {label}": irregular_masks(root / "masks" / "irregular", cat,
                                                           args.per_category)
                     for cat, label in enumerate(CATEGORIES)}
        hole_sets[f"border strokes {CATEGORIES[BORDER_CATEGORY]}"] = border_masks(
            args.per_category)
        for name in SETS:
            images = validation_set(root / name, args.n)
            rows = {"64² centre hole": score(fills, images,
                                             centre.expand(len(images), -1, -1, -1), True)}
            for label, masks in hole_sets.items():  # the first images, cycled, one per mask
                rows[label] = score(fills, images[torch.arange(len(masks)) % len(images)], masks)
            record["sets"][name] = rows
            if args.sheet and name == SETS[0]:
                picks = images[:SHEET_IMAGES]
                shown = {k: f for k, f in fills.items() if k in weights or k == "Telea (OpenCV)"}
                write_sheet(Path(args.sheet), shown, picks, centre.expand(len(picks), -1, -1, -1))
    except NPSError as err:
        print(f"content_prior: error: {err}", file=sys.stderr)
        return 2
    print(f"weights: {record['weights']}; {args.n} val images per set, "
          f"{args.per_category} masks/category\n")
    for name, rows in record["sets"].items():
        print(f"## {name}\n")
        print(table(rows, "psnr", "hole PSNR (dB)") + "\n")
        centre_row = {"64² centre hole": rows["64² centre hole"]}
        print(table(centre_row, "l1_percent", "hole L1 (%)", best=min) + "\n")
        print(table(centre_row, "fine_texture", "fine texture (fill / truth)", best=None)
              + "\n")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
