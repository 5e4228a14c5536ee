"""The README's main job, measured and pictured: Kodak ``kodim08`` (768×512) with the
256×256 box ``256,128,512,384``, filled by nps's default method, the paper's L-BFGS method
(``method="optimise"``) and PatchMatch.

    python -m neural_patch_synth.bench.main_job [--data DIR] [--out PICTURE.jpg] [--options JSON]

Prints a markdown table (seconds and every hole measure) and writes a look sheet
(input | fills | truth, cropped around the hole).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from neural_patch_synth.bench.datasets import data_root, holed
from neural_patch_synth.bench.methods import configure_nps
from neural_patch_synth.bench.metrics import hole_metrics
from neural_patch_synth.bench.run import parse_options, select_methods, vgg_weights
from neural_patch_synth.bench.sheets import look_sheet, save_picture
from neural_patch_synth.cli import box_mask
from neural_patch_synth.errors import NPSError

PHOTO = "kodim08.png"
BOX = "256,128,512,384"
SHOWN = ("nps", "nps-optimise", "patchmatch")
MEASURES = ("psnr", "ssim", "sharpness", "swd", "saturation")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="data folder (default: $NPS_DATA, else ../shared/data)")
    parser.add_argument("--out", default="benchmarks/results/main-job.jpg",
                        help="look sheet to write")
    parser.add_argument("--options", help="engine options for the nps methods, as a JSON "
                                          "object, e.g. '{\"guide_weight\": 0}'")
    args = parser.parse_args(argv)
    try:
        options = parse_options(args.options)
        root = data_root(args.data)
    except NPSError as err:
        raise SystemExit(f"main_job: {err}") from None
    image = np.asarray(Image.open(root / "kodak" / PHOTO).convert("RGB"))
    mask = box_mask(BOX, (image.shape[1], image.shape[0]))
    given = holed(image, mask)
    configure_nps(device="cpu", seed=0, vgg_weights=vgg_weights(root), **options)
    runnable, notes = select_methods(list(SHOWN))
    for note in notes:
        print(f"skipped: {note}")
    fills, rows = [], []
    for name, m in runnable.items():
        start = time.perf_counter()
        fill = m.fn(given, mask)
        seconds = time.perf_counter() - start
        fills.append((name, fill))
        measures = hole_metrics(fill, image, mask)
        rows.append(f"| {name} | {seconds:.1f} | "
                    + " | ".join(f"{measures[m]:.2f}" for m in MEASURES) + " |")
    print("| method | seconds | " + " | ".join(MEASURES) + " |")
    print("|---|---|" + "---|" * len(MEASURES))
    print("\n".join(rows))
    out = Path(args.out)
    save_picture(look_sheet(image, mask, fills, f"input {PHOTO}"), out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
