"""How much hole PSNR a better content prior could buy: nps on the issue's Kodak sets with the
shipped content network and with the truth itself as the prior (a perfect prior), at each
layout-guide σ asked for.

The truth prior is handed the photo with its hole pixels and returns them, so its fill is the
best any content network could lead the patch synthesis to; the synthesis itself reads the
hole only through the prior's fill (its fills are bit-identical when the hole is zeroed and the
prior's output replayed), and copies patches from the known pixels only. The network is given
the photo with the hole zeroed, as ``nps bench`` gives it. Prints a markdown
table of the mean hole measures per set; with ``--out`` also keeps every fill where ``nps bench``
keeps its own (``OUT/outputs/<set>/<case>/<prior>-sigma<σ>.png``), so the blind tools can pair
them::

    python benchmarks/oracle_prior.py [--data ../shared/data] [--sigmas 2 12] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch
from tqdm import tqdm

from neural_patch_synth.bench.datasets import data_root, holed
from neural_patch_synth.bench.metrics import hole_metrics
from neural_patch_synth.bench.report import means_table
from neural_patch_synth.bench.run import SUITES, suite_cases, vgg_weights
from neural_patch_synth.bench.sheets import output_path, save_picture
from neural_patch_synth.config import InpaintConfig
from neural_patch_synth.errors import NPSError
from neural_patch_synth.prior import load_prior
from neural_patch_synth.synthesis import Synthesizer

MEASURES = ("psnr", "sharpness", "swd", "saturation")


class TruthPrior:
    """A perfect prior: ``(1, 3, h, w)`` in ``[0, 1]`` → itself, hole pixels included."""

    size = None

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return image


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="data folder (default: $NPS_DATA, else ../shared/data)")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[2.0, 12.0],
                        help="layout-guide σ values (guide_sigma) to run")
    parser.add_argument("--out", type=Path, help="folder to write the fills to")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        root = data_root(args.data)
        cases = suite_cases(SUITES["kodak"], root)
        base = InpaintConfig(device="cpu", seed=0, progress=False, vgg_weights=vgg_weights(root))
        priors = {"network": load_prior("network", torch.device("cpu")), "truth": TruthPrior()}
    except NPSError as err:
        raise SystemExit(f"oracle_prior: {err}") from None
    runs = {(name, sigma): Synthesizer(dataclasses.replace(base, guide_sigma=sigma), prior,
                                       torch.device("cpu"))
            for sigma in args.sigmas for name, prior in priors.items()}
    means: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    with tqdm(total=len(runs) * len(cases), disable=args.quiet) as bar:
        for case in cases:
            image, mask = case.load()
            given = {"truth": image, "network": holed(image, mask)}
            for (name, sigma), synthesize in runs.items():
                fill = synthesize(given[name], mask)
                means.setdefault((name, f"{sigma:g}", case.dataset), []).append(
                    hole_metrics(fill, image, mask))
                if args.out:
                    save_picture(fill, output_path(args.out, case, f"{name}-sigma{sigma:g}"))
                bar.update()
    print("\n".join(means_table(("prior", "guide σ", "set"), means, MEASURES)))


if __name__ == "__main__":
    main()
