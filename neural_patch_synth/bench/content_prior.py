"""Content-prior benchmark: hole PSNR at 128² for the network vs classical fills.

    python -m neural_patch_synth.bench.content_prior [--data DIR] [--n N]

Two tests on ``scenes/val`` (fixed subset, centre 128² crops): a 64² centre hole, and the
irregular masks of ``masks/irregular`` (512² PNG, white = hole) resized to 128², one row per
hole-area category. Methods: the content network, mean-colour fill, OpenCV Telea (radius 3) and
the smooth (push-pull) prior. Prints markdown tables and writes JSON. The data root is ``--data``,
else ``$NPS_DATA``, else ``../shared/data`` beside the repository.
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

from neural_patch_synth.bench.datasets import data_root
from neural_patch_synth.errors import NPSError
from neural_patch_synth.masks import centre_square_mask
from neural_patch_synth.prior import shipped_weights
from neural_patch_synth.prior.network import SIZE, NetworkPrior, mean_fill
from neural_patch_synth.prior.smooth import smooth_fill
from neural_patch_synth.prior.train import hole_psnr, validation_set

CATEGORIES = ["1–10 %", "10–20 %", "20–30 %", "30–40 %", "40–50 %", "50–60 %"]

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


def methods(prior: NetworkPrior) -> dict[str, Fill]:
    """The compared fills, by table name."""
    return {"network": lambda x, m: torch.cat([prior(a[None], b[None]) for a, b in
                                               zip(x, m, strict=True)]),
            "mean colour": mean_fill, "Telea (OpenCV)": telea, "smooth prior": smooth_fill}


def score(fills: dict[str, Fill], images: torch.Tensor,
          masks: torch.Tensor) -> dict[str, dict[str, float]]:
    """Mean hole PSNR (dB) and hole L1 (% of range) per method, plus seconds per image."""
    result = {}
    for name, fill in fills.items():
        start = time.perf_counter()
        out = fill(images, masks).clamp(0, 1)
        seconds = (time.perf_counter() - start) / len(images)
        out = out * masks + images * (1 - masks)
        l1 = ((out - images).abs() * masks).sum(dim=(1, 2, 3)) / (3 * masks.sum(dim=(1, 2, 3)))
        result[name] = {"psnr": float(hole_psnr(out, images, masks).mean()),
                        "l1_percent": float(100 * l1.mean()), "seconds_per_image": seconds}
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


def table(rows: dict[str, dict[str, dict[str, float]]], key: str, title: str,
          lower_is_better: bool = False) -> str:
    """Markdown table: one row per test, one column per method, ``key`` values, best in bold."""
    names = list(next(iter(rows.values())))
    lines = [f"| {title} | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for row, res in rows.items():
        best = (min if lower_is_better else max)(res[n][key] for n in names)
        cells = [f"**{res[n][key]:.2f}**" if res[n][key] == best else f"{res[n][key]:.2f}"
                 for n in names]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", help="content_net.pt (default: the shipped weights)")
    parser.add_argument("--data", help="data root (default $NPS_DATA or ../shared/data)")
    parser.add_argument("--n", type=int, default=200, help="val images (default 200)")
    parser.add_argument("--per-category", type=int, default=50,
                        help="irregular masks per area category (default 50)")
    parser.add_argument("--json", default="bench-out/content_prior.json",
                        help="JSON output path")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        root = data_root(args.data)
        weights = Path(args.weights) if args.weights else shipped_weights()
        if weights is None or not weights.exists():
            raise NPSError(f"content-network weights not found: {weights}")
        prior = NetworkPrior.from_file(weights, torch.device("cpu"))
        images = validation_set(root / "scenes" / "val", args.n)
        fills = methods(prior)
        centre = torch.from_numpy(centre_square_mask(SIZE, SIZE // 2)).float()[None, None]
        centre_rows = {"64² centre hole": score(fills, images, centre.expand(len(images),
                                                                             -1, -1, -1))}
        irregular_rows = {}
        for cat, label in enumerate(CATEGORIES):
            masks = irregular_masks(root / "masks" / "irregular", cat, args.per_category)
            picks = images[torch.arange(len(masks)) % len(images)]
            irregular_rows[label] = score(fills, picks, masks)
    except NPSError as err:
        print(f"content_prior: error: {err}", file=sys.stderr)
        return 2
    print(f"weights: {weights}; {len(images)} val images, {args.per_category} masks/category\n")
    print(table(centre_rows, "psnr", "hole PSNR (dB)") + "\n")
    print(table(centre_rows, "l1_percent", "hole L1 (%)", lower_is_better=True) + "\n")
    print(table(irregular_rows, "psnr", "irregular, hole PSNR (dB)"))
    record = {"weights": str(weights), "n_images": len(images),
              "masks_per_category": args.per_category, "threads": args.threads,
              "centre": centre_rows, "irregular": irregular_rows}
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
