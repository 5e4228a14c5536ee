"""Two layout-guide σ values (``guide_sigma``) on compact holes of several sizes: is the broad
guide that blind judges preferred on the Kodak 256² centre crops better on boxes elsewhere?
A SIDE² box at a seeded spot on each of 12 Kodak photos (every second one, full size) per
side asked for, and the 20 scenes of the quick suite (128², 64² centre box). Prints a markdown
table of the mean hole measures per set and writes, in ``OUT``, the fills where ``nps bench``
keeps its own (``outputs/<set>/<case>/sigma<σ>.png``), the box masks (``masks/``) and blind
sheets, key and answers template of the two σ values (:mod:`neural_patch_synth.bench.blind`;
score with ``python -m neural_patch_synth.bench.blind OUT``)::

    python benchmarks/box_sizes.py --out DIR [--sides 48 96 160 256] [--sigmas 2 12]
                                   [--data ../shared/data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from neural_patch_synth.api import Inpainter
from neural_patch_synth.bench import blind
from neural_patch_synth.bench.datasets import Case, data_root, holed, scenes
from neural_patch_synth.bench.metrics import hole_metrics
from neural_patch_synth.bench.report import means_table
from neural_patch_synth.bench.run import vgg_weights
from neural_patch_synth.bench.sheets import output_path, save_picture
from neural_patch_synth.errors import NPSError

MEASURES = ("psnr", "sharpness", "swd", "saturation", "seam")
SCENES = 20
"""The quick suite's scenes."""


def box_spot(height: int, width: int, side: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left ``(y, x)`` of a ``side``² box drawn from ``rng``, half a side from the photo's
    edges (32 px where the photo is too small for that)."""
    margin = side // 2 if min(height, width) > 2 * side else 32
    if min(height, width) < side + 2 * margin + 1:
        raise NPSError(f"a {height}×{width} photo has no room for a {side}² box")
    return (int(rng.integers(margin, height - side - margin)),
            int(rng.integers(margin, width - side - margin)))


def box_cases(root: Path, side: int, masks: Path) -> list[Case]:
    """Every second Kodak photo with a ``side``² box at a spot drawn with seed ``side``; the
    box masks are written to ``masks`` (white = hole)."""
    rng = np.random.default_rng(side)
    cases = []
    for path in sorted((root / "kodak").glob("kodim*.png"))[1::2]:
        width, height = Image.open(path).size
        y, x = box_spot(height, width, side, rng)
        mask = np.zeros((height, width), np.uint8)
        mask[y:y + side, x:x + side] = 255
        mask_path = masks / f"box{side}-{path.stem}.png"
        save_picture(np.repeat(mask[..., None], 3, axis=2), mask_path)
        cases.append(Case(f"kodak-box-{side}", path, mask_path))
    return cases


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for fills and sheets")
    parser.add_argument("--sides", type=int, nargs="+", default=[48, 96, 160, 256],
                        help="box sides in pixels")
    parser.add_argument("--sigmas", type=float, nargs=2, default=[2.0, 12.0],
                        help="the two guide_sigma values compared")
    parser.add_argument("--data", help="data folder (default: $NPS_DATA, else ../shared/data)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    names = tuple(f"sigma{s:g}" for s in args.sigmas)
    try:
        root = data_root(args.data)
        cases = [c for side in args.sides for c in box_cases(root, side, args.out / "masks")]
        cases += scenes(root, SCENES)
        runs = {name: Inpainter(guide_sigma=sigma, seed=0, progress=False,
                                vgg_weights=vgg_weights(root))
                for name, sigma in zip(names, args.sigmas, strict=True)}
    except NPSError as err:
        raise SystemExit(f"box_sizes: {err}") from None
    means: dict[tuple[str, str], list[dict[str, float]]] = {}
    for case in tqdm(cases, disable=args.quiet):
        image, mask = case.load()
        for name, fill in runs.items():
            result = fill(holed(image, mask), mask)
            means.setdefault((case.dataset, name.removeprefix("sigma")), []).append(
                hole_metrics(result, image, mask))
            save_picture(result, output_path(args.out, case, name))
    blind.write_blind(args.out, cases, names, args.quiet)
    print("\n".join(means_table(("set", "guide σ"), means, MEASURES)))


if __name__ == "__main__":
    main()
