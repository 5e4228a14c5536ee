"""``nps``: argparse subcommands over the Python API; errors become one line and an exit code.

Exit codes:

- 0: success (``batch``: every photo done or already done).
- 1: ``batch``: some photos failed, including a photo whose worker died or that killed nps in
  earlier runs (see the report); the others were processed.
- 2: bad input or usage, nothing computed (or, for ``batch``, the run could not start or go
  on: unsafe layout, unwritable output folder, another run on the report, engine that cannot
  start).
- 3: internal error (a bug; ``NPS_DEBUG=1`` shows the traceback).
- 130: interrupted (Ctrl-C, or SIGTERM during ``batch``); finished outputs are kept.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from tqdm import tqdm

from .errors import NPSError

if TYPE_CHECKING:
    from .ray_batch import RayExecutor


class _StderrLog(logging.Handler):
    """The library's log records as ``nps: warning: ...`` (``nps: ...`` below WARNING) lines
    on stderr, written around progress bars."""

    def emit(self, record: logging.LogRecord) -> None:
        prefix = "nps: warning: " if record.levelno >= logging.WARNING else "nps: "
        tqdm.write(prefix + record.getMessage(), file=sys.stderr)


def _ints(text: str) -> tuple[int, ...]:
    """``"10,8,6"`` → ``(10, 8, 6)`` (argparse reports the ValueError as a usage error)."""
    return tuple(int(v) for v in text.split(","))


def _engine_options(p: argparse.ArgumentParser) -> None:
    """Options shared by the commands that run the engine."""
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--prior", default="auto",
                   help="auto, network, smooth, or a content-network weights file")
    p.add_argument("--prior-only", action="store_true",
                   help="write the prior's fill without texture optimisation")
    p.add_argument("--method", choices=("vote", "optimise"),
                   help="vote (default): copy real patches into the prior's layout; optimise: "
                        "the paper's L-BFGS pyramid (slower, blurrier)")
    p.add_argument("--em-iterations", type=_ints,
                   help="vote: search-and-vote iterations per level, finest last, e.g. 10,8,6,4,2")
    p.add_argument("--seams", action=argparse.BooleanOptionalAction,
                   help="vote: hide the seams between copied pieces (default: on; --no-seams "
                        "keeps the pieces as copied)")
    p.add_argument("--detail", type=float,
                   help="vote: sharpen the fill's fine detail by this amount (default 0.15; "
                        "0 off)")
    p.add_argument("--shifts", type=int,
                   help="vote: lay out the coarsest level by this many of the photo's dominant "
                        "shifts (default: 60 for holes, 0 for outpaint; 0 off)")
    p.add_argument("--guide-sigma", type=float,
                   help="vote: blur of the prior's layout guide, in its 128-px pixels (default "
                        "2; larger keeps only the prior's broad colours: fewer blobs of "
                        "far-away material on some large holes, less hole PSNR)")
    p.add_argument("--blend", choices=("none", "poisson"),
                   help="poisson: seamless-clone the fill into the photo (default: none for "
                        "inpaint and batch, poisson for outpaint)")
    p.add_argument("--iterations", type=_ints,
                   help="optimise: L-BFGS iterations per level, coarse to fine, e.g. 60,40,20")
    p.add_argument("--layers", help="optimise: VGG-19 layers for the texture term, e.g. relu3_1")
    p.add_argument("--vgg-weights",
                   help="optimise: VGG-19 weight file (else $NPS_VGG_WEIGHTS, torch hub)")
    p.add_argument("--search", choices=("auto", "faiss", "torch"),
                   help="optimise: nearest-patch backend")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="say which prior and which weight files are used")


def _mask_options(p: argparse.ArgumentParser) -> None:
    """How masks are read, shared by the commands that take masks."""
    p.add_argument("--invert-mask", action="store_true",
                   help="fill the mask's black part instead of its white part")
    p.add_argument("--allow-large-hole", action="store_true",
                   help="fill a hole covering more than 90 %% of the photo (else refused as "
                        "probably an inverted mask)")


def engine_config(args: argparse.Namespace, progress: bool | None = None):
    """:class:`InpaintConfig` from the shared engine options."""
    from .config import InpaintConfig

    opts = {"device": args.device, "seed": args.seed, "prior": args.prior,
            "prior_only": args.prior_only,
            "progress": (not args.quiet) if progress is None else progress}
    for name in ("method", "em_iterations", "seams", "detail", "shifts", "guide_sigma", "blend",
                 "iterations", "layers", "vgg_weights", "search"):
        if getattr(args, name) is not None:
            opts[name] = getattr(args, name)
    return InpaintConfig.from_options(**opts)


def box_mask(spec: str, size: tuple[int, int]):
    """``"x0,y0,x1,y1"`` → ``(H, W)`` bool mask with that pixel rectangle as the hole."""
    import numpy as np

    try:
        x0, y0, x1, y1 = (int(v) for v in spec.split(","))
    except ValueError:
        raise NPSError(f"--box takes X0,Y0,X1,Y1 in pixels, got {spec!r}") from None
    width, height = size
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise NPSError(f"--box {spec} is not a rectangle inside the {width}x{height} image")
    mask = np.zeros((height, width), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def cmd_inpaint(args: argparse.Namespace) -> int:
    from .api import Inpainter
    from .io import (
        check_destination,
        estimated_size,
        load_image,
        load_mask,
        output_format,
        save_image,
    )

    out = Path(args.output)
    output_format(out)
    photo = load_image(args.image)
    mask = load_mask(args.mask, photo.size) if args.mask else None
    if args.box:
        mask = box_mask(args.box, photo.size)
    check_destination(out, overwrite=args.overwrite, sources=(args.image, args.mask),
                      needed=estimated_size(photo, output_format(out)))
    result = Inpainter(engine_config(args)).photo(photo, mask, invert_mask=args.invert_mask,
                                                  allow_large_hole=args.allow_large_hole)
    save_image(out, result, overwrite=args.overwrite)
    if not args.quiet:
        print(f"wrote {out}", file=sys.stderr)
    return 0


def ray_executor(args: argparse.Namespace) -> RayExecutor | None:
    """:class:`RayExecutor` from ``--ray`` and its options; None without ``--ray``."""
    tuning = {"--ray-workers": args.ray_workers, "--gpus-per-worker": args.gpus_per_worker,
              "--threads-per-worker": args.threads_per_worker}
    if args.ray is None:
        given = [name for name, value in tuning.items() if value is not None]
        if given:
            raise NPSError(f"{', '.join(given)} needs --ray")
        return None
    if args.workers is not None:
        raise NPSError("--workers is for local processes; with --ray use --ray-workers")
    try:
        from .ray_batch import RayExecutor
    except ModuleNotFoundError as err:
        if (err.name or "").partition(".")[0] != "ray":
            raise
        raise NPSError("--ray needs the ray extra: "
                       "pip install 'neural_patch_synth[ray]'") from None
    return RayExecutor(args.ray or None, args.ray_workers,
                       0.0 if args.gpus_per_worker is None else args.gpus_per_worker,
                       1 if args.threads_per_worker is None else args.threads_per_worker)


def cmd_outpaint(args: argparse.Namespace) -> int:
    from .api import Inpainter
    from .io import check_destination, estimated_size, load_image, output_format, save_image
    from .outpaint import requested_extent

    if args.mask or args.box:
        raise NPSError("outpaint takes no mask: it fills only the pixels it adds "
                       "(use nps inpaint for holes)")
    out = Path(args.output)
    fmt = output_format(out)
    photo = load_image(args.image)
    extent = requested_extent(photo.size, args.extend, args.to)
    width, height = extent.grown(photo.size)
    check_destination(out, overwrite=args.overwrite, sources=(args.image,),
                      needed=estimated_size(photo, fmt) * width * height
                      // (photo.size[0] * photo.size[1]))
    result = Inpainter(engine_config(args)).outpaint_photo(photo, extent)
    save_image(out, result, overwrite=args.overwrite)
    if not args.quiet:
        print(f"wrote {out} ({width}x{height})", file=sys.stderr)
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from .batch import BatchOptions, run_batch

    options = BatchOptions(
        recursive=args.recursive, mask_suffix=args.mask_suffix,
        workers=1 if args.workers is None else args.workers, report=args.report,
        shard=args.shard, retry_failed=args.retry_failed, invert_mask=args.invert_mask,
        allow_large_hole=args.allow_large_hole, quiet=args.quiet,
        executor=ray_executor(args))
    return run_batch(args.input, args.masks, args.output, engine_config(args, progress=False),
                     options)


def cmd_bench(args: argparse.Namespace) -> int:
    try:
        from .bench.run import run_bench
    except ImportError as err:
        raise NPSError(f"the benchmark harness needs the bench extra ({err}); "
                       "pip install 'neural_patch_synth[bench]'") from None
    return run_bench(args)


def cmd_train_content(args: argparse.Namespace) -> int:
    from .prior.train import train_content

    names = ("val_data", "arch", "width", "steps", "batch_size", "lr", "loss", "init",
             "val_every", "max_minutes", "cache", "device", "seed", "workers")
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    train_content(args.data, args.out, quiet=args.quiet, **given)
    return 0


def cmd_masks(args: argparse.Namespace) -> int:
    import numpy as np

    from .io import Photo, make_output_folder, save_image
    from .masks import check_mask_request, random_mask

    check_mask_request(args.size, args.category)
    if args.count < 1:
        raise NPSError(f"--count must be at least 1, got {args.count}")
    folder = Path(args.output)
    if folder.exists() and not folder.is_dir():
        raise NPSError(f"the output is not a folder: {folder}")
    paths = [folder / f"mask-{args.category:02d}-{i:05d}.png" for i in range(args.count)]
    taken = [p for p in paths if os.path.lexists(p)]
    if taken:
        raise NPSError(f"{len(taken)} of the {len(paths)} masks exist already, e.g. {taken[0]}; "
                       "nps masks never overwrites (use another folder or remove them)")
    make_output_folder(folder)
    for i, path in enumerate(tqdm(paths, desc="masks", unit="mask", disable=args.quiet)):
        rng = np.random.default_rng([args.seed, args.category, i])
        hole = random_mask(args.size, args.category, rng, border=args.border)
        grey = np.where(hole, np.uint8(255), np.uint8(0))
        save_image(path, Photo(np.repeat(grey[..., None], 3, axis=2), gray=True))
    if not args.quiet:
        print(f"wrote {len(paths)} masks to {folder}", file=sys.stderr)
    return 0


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line: ``nps CMD: error: ... (see
    --help)``, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nps", description="High-resolution inpainting by multi-scale neural patch synthesis.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)

    p = sub.add_parser("inpaint", help="fill the hole of one photo")
    p.add_argument("image", help="input photo")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--mask", help="mask image, white (from 50 %% grey up) = hole "
                                      "(default: the photo's transparent pixels)")
    where.add_argument("--box", metavar="X0,Y0,X1,Y1", help="fill this pixel rectangle")
    p.add_argument("-o", "--output", required=True, help="output file; format from extension")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output (never the input photo or mask itself)")
    _mask_options(p)
    _engine_options(p)
    p.set_defaults(func=cmd_inpaint)

    p = sub.add_parser("outpaint", help="extend one photo beyond its borders")
    p.add_argument("image", help="input photo (opaque)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--extend", metavar="L,T,R,B",
                      help="pixels to add per side, or N%% of the side, e.g. 0,0,50%%,0")
    size.add_argument("--to", metavar="WxH", help="final size, the photo centred")
    p.add_argument("--mask", help=argparse.SUPPRESS)
    p.add_argument("--box", help=argparse.SUPPRESS)
    p.add_argument("-o", "--output", required=True, help="output file; format from extension")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output (never the input photo itself)")
    _engine_options(p)
    p.set_defaults(func=cmd_outpaint)

    p = sub.add_parser("batch", help="fill holes across a photo archive (resumable)")
    p.add_argument("input", help="folder, glob, or text file listing photo paths")
    p.add_argument("--masks", required=True, help="folder of masks, mirroring the input tree")
    p.add_argument("-o", "--output", required=True, help="output folder (not the input folder)")
    p.add_argument("--recursive", action="store_true", help="descend into sub-folders")
    p.add_argument("--mask-suffix", default="", help="mask file = <relative stem><suffix>.png")
    p.add_argument("--workers", type=int, help="parallel worker processes (default 1)")
    p.add_argument("--report", help="JSONL report path (default OUTPUT/nps-report.jsonl)")
    p.add_argument("--shard", default="1/1", help="I/N: process only the I-th of N shares")
    p.add_argument("--retry-failed", action="store_true",
                   help="retry photos that killed nps or its worker in an earlier run")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run the photos on Ray actors (the ray extra): a local Ray instance, "
                        "or the cluster at ADDRESS (auto, HOST:PORT, ray://HOST:PORT); every "
                        "node must see the input, mask and output folders at the same paths "
                        "(a shared file system)")
    p.add_argument("--ray-workers", type=int, metavar="N",
                   help="--ray: actors (default: the cluster's CPUs / threads per worker)")
    p.add_argument("--gpus-per-worker", type=float, metavar="F",
                   help="--ray: GPUs per actor, fractions allowed (default 0)")
    p.add_argument("--threads-per-worker", type=int, metavar="T",
                   help="--ray: CPUs (torch threads) per actor (default 1)")
    _mask_options(p)
    _engine_options(p)
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("bench", help="compare nps with PatchMatch and classical fills")
    p.add_argument("--suite", choices=("quick", "kodak", "full", "outpaint"), default="quick",
                   help="quick (default); kodak (all 24 centre crops and 12 irregular photos); "
                        "full; or outpaint (the quick suite's outpainting set)")
    p.add_argument("--out", help="output folder (results.json, summary.md, look/, ...)")
    p.add_argument("--methods", nargs="+", help="methods to run (default: all available)")
    p.add_argument("--blind", nargs="?", const="nps,patchmatch", metavar="A,B",
                   help="also write unlabelled A-vs-B sheets to judge (default nps,patchmatch)")
    p.add_argument("--score-blind", metavar="OUT", help="print the blind score of OUT and exit")
    p.add_argument("--options", metavar="JSON",
                   help="engine options for every nps method, over the suite's, as a JSON "
                        "object, e.g. '{\"guide_weight\": 0}' (a setting's sweep, rerunnable)")
    p.add_argument("--data", help="data folder (default: $NPS_DATA, else ../shared/data)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("train-content", help="train the 128-px content network (resumable)")
    p.add_argument("--data", required=True, help="folder of training photos")
    p.add_argument("--out", required=True, help="run folder: checkpoints, log, weights")
    p.add_argument("--val-data", help="folder of validation photos")
    p.add_argument("--steps", type=int,
                   help="total optimisation steps (default 15000, v2's)")
    p.add_argument("--batch-size", type=int, help="photos per step (default 16)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default 5e-4)")
    p.add_argument("--loss", choices=("l1", "log-mse"),
                   help="hole term: l1 (default) or log-mse (per-image log of the hole's mean "
                        "squared error, i.e. minus its PSNR)")
    p.add_argument("--init", help="start from this weights file (fine-tuning; fresh optimiser)")
    p.add_argument("--val-every", type=int, help="validate every N steps (default 250)")
    p.add_argument("--max-minutes", type=float,
                   help="stop (with a checkpoint) after this many minutes; rerun to resume")
    p.add_argument("--cache", metavar="DIR",
                   help="folder of the decoded-photo cache (default: the run folder); runs "
                        "that share one decode the photos once")
    p.add_argument("--device", help="auto (default: CUDA when available), cpu or cuda")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--workers", type=int,
                   help="processes that draw batches ahead of the network (default: none on "
                        "a CPU, up to 8 on a GPU; the batches are the same)")
    p.add_argument("--arch",
                   help="network: pconv (partial-convolution U-Net, the default), attention "
                        "(contextual attention) or v1 (the first Context-Encoder-style net)")
    p.add_argument("--width", type=int,
                   help="channels of the first network level (default 24, v2's); "
                        "with --init, a larger width widens a pconv network")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train_content)

    p = sub.add_parser("masks", help="write irregular training/test masks by hole-area category")
    p.add_argument("--category", type=int, required=True, metavar="K",
                   help="hole area: 0 = 1–10 %%, 1 = 10–20 %%, … 5 = 50–60 %% of the image")
    p.add_argument("--count", type=int, required=True, metavar="N", help="masks to write")
    p.add_argument("--size", type=int, default=512, metavar="S",
                   help="side in pixels, at least 16 (default 512)")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="folder for DIR/mask-KK-NNNNN.png (white = hole; created if missing)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--border", action="store_true",
                   help="every mask touches the image border (outpainting-style holes)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_masks)
    return parser


def _attach_values(argv: list[str]) -> list[str]:
    """``--extend -5,0,0,0`` → ``--extend=-5,0,0,0``: argparse would take a value starting
    with ``-`` for an option (and then report a missing value, not the bad extent)."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--extend" and arg.startswith("-"):
            out[-1] = f"--extend={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_attach_values(sys.argv[1:] if argv is None else argv))
    logger = logging.getLogger("neural_patch_synth")
    handler = _StderrLog()
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO if getattr(args, "verbose", False) else logging.WARNING)
    try:
        return args.func(args)
    except NPSError as err:
        print(f"nps: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nps: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - last line of defence: one line, not a traceback
        if os.environ.get("NPS_DEBUG"):
            raise
        print(f"nps: internal error: {type(err).__name__}: {err} "
              "(set NPS_DEBUG=1 for a traceback)", file=sys.stderr)
        return 3
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


if __name__ == "__main__":
    sys.exit(main())
