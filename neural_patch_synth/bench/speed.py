"""Speed figure: one 512² photo with a 256² centre hole, end to end, with a per-part breakdown.

    python -m neural_patch_synth.bench.speed [--image PATH] [--size 512] [--threads N]
    python -m neural_patch_synth.bench.speed --photo 4096x2732   # the same hole, a big photo
    python -m neural_patch_synth.bench.speed --device cuda --warmup 1 --patchmatch

With ``--warmup N`` the engine fills the same case N times untimed first (on a GPU the first
fill also pays for CUDA's start-up and kernel loading); ``--patchmatch`` also times
PatchMatch (pypatchmatch defaults) on the same case; ``--profile FILE`` writes a profile of one
more fill (torch.profiler's table of operators by their own time).

With ``--photo WxH`` the photo is resized to W×H and keeps the same centred hole (half of
``--size``): cost should grow with the hole, not the photo.

Parts of the default method (seconds, summed over pyramid levels): content prior; patch
search (PatchMatch on patch descriptors, with the descriptors' computation and the exact
distances of the matches); vote (weighted votes and the final best-patch copy); seams (the
gradient-domain pass); other (pyramid, texture features, compositing, set-up).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from neural_patch_synth import Inpainter, voting
from neural_patch_synth.bench import meter
from neural_patch_synth.bench.datasets import centre_hole, data_root, holed, square_hole
from neural_patch_synth.bench.metrics import hole_psnr
from neural_patch_synth.bench.run import parse_options
from neural_patch_synth.errors import NPSError
from neural_patch_synth.io import parse_size, write_text


class Clock:
    """Wall-clock totals per named part; ``wrap`` times a callable, ``part`` a block."""

    def __init__(self, device: torch.device) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    @contextmanager
    def part(self, name: str):
        self.sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self.sync()
            self.totals[name] += time.perf_counter() - start

    def wrap(self, owner, attr: str, name: str) -> None:
        original = getattr(owner, attr)

        def timed(*args, **kwargs):
            with self.part(name):
                return original(*args, **kwargs)

        setattr(owner, attr, timed)


def centre_case(image_path: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``size``² centre crop of the photo and a centred hole of half its side."""
    img = np.asarray(Image.open(image_path).convert("RGB"))
    h, w, _ = img.shape
    if min(h, w) < size:
        raise SystemExit(f"{image_path} is smaller than {size}px")
    y, x = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(img[y:y + size, x:x + size]), centre_hole(size, size)


def photo_case(image_path: Path, width: int, height: int, hole: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """The photo resized to ``width``×``height`` with a centred ``hole``² square hole."""
    img = np.asarray(Image.open(image_path).convert("RGB").resize((width, height),
                                                                  Image.LANCZOS))
    return img, square_hole(height, width, hole)


def measure(img: np.ndarray, mask: np.ndarray, nps: Inpainter, warmup: int = 0) -> dict:
    """Run the engine ``nps`` on ``img``/``mask`` (``warmup`` untimed fills first); return
    the timing breakdown and hole PSNR of the timed fill."""
    given = holed(img, mask)
    for _ in range(warmup):
        nps(given, mask)
    clock = Clock(nps.device)
    timed = [(voting.Voter, "search", "search"), (voting.Voter, "vote", "vote"),
             (voting.Voter, "best_patch", "vote"), (voting, "reconstruct", "seams")]
    originals = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in timed]
    clock.wrap(nps.synthesizer, "run_prior", "prior")
    for owner, attr, part in timed:
        clock.wrap(owner, attr, part)
    try:
        out, total, peak_mb = meter.measure(lambda: nps(given, mask), nps.device.type == "cuda")
    finally:
        for owner, attr, original in originals:
            setattr(owner, attr, original)
    t = clock.totals
    parts = {f"{name}_s": t[name] for name in ("prior", "search", "vote", "seams")}
    parts["other_s"] = total - sum(parts.values())
    mean_fill = np.where(mask[..., None], img[~mask].mean(0), img)
    return {"total_s": total, "peak_mb": peak_mb, **parts,
            "hole_psnr_db": hole_psnr(out, img, mask),
            "mean_fill_psnr_db": hole_psnr(mean_fill / 255, img, mask)}


def patchmatch_time(img: np.ndarray, mask: np.ndarray) -> dict:
    """Seconds and hole PSNR of PatchMatch (:mod:`~neural_patch_synth.bench.methods`) on the
    same case."""
    from neural_patch_synth.bench.methods import METHODS, unavailable

    method = METHODS["patchmatch"]
    if why := unavailable(method):
        raise SystemExit(f"speed: PatchMatch cannot run here: {why}")
    given = holed(img, mask)
    out, seconds, _ = meter.measure(lambda: method.fn(given, mask))
    return {"patchmatch_s": seconds, "patchmatch_psnr_db": hole_psnr(out, img, mask)}


def profile(img: np.ndarray, mask: np.ndarray, nps: Inpainter) -> str:
    """torch.profiler's table of one fill by ``nps`` (which has filled once already: its
    one-time costs are paid), operators sorted by their own time on the device that ran
    them."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    given = holed(img, mask)
    cuda = nps.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with torch_profile(activities=activities) as prof:
        nps(given, mask)
        if cuda:
            torch.cuda.synchronize()
    key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=40) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path,
                        help="photo (default: kodak/kodim08.png in the benchmark data)")
    parser.add_argument("--size", type=int, default=512,
                        help="side of the centre crop; the hole is half of it")
    parser.add_argument("--photo", help="WxH: resize the whole photo to this size instead of "
                                        "cropping (the hole stays size/2 square)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    parser.add_argument("--options", help="InpaintConfig fields as JSON")
    parser.add_argument("--warmup", type=int, default=0,
                        help="untimed fills before the timed one (1 on a GPU)")
    parser.add_argument("--patchmatch", action="store_true",
                        help="also time PatchMatch (pypatchmatch defaults) on the same case")
    parser.add_argument("--profile", type=Path,
                        help="write torch.profiler's operator table of one more fill here")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        options = parse_options(args.options)
        image = args.image or data_root() / "kodak" / "kodim08.png"
    except NPSError as err:
        raise SystemExit(f"speed: {err}") from None
    if not image.is_file():
        raise SystemExit(f"photo not found: {image} (set NPS_DATA or --image)")
    if args.photo:
        try:
            width, height = parse_size(args.photo, "--photo")
        except NPSError as err:
            raise SystemExit(f"speed: {err}") from None
        img, mask = photo_case(image, width, height, args.size // 2)
    else:
        img, mask = centre_case(image, args.size)
    nps = Inpainter(progress=False, **{"device": args.device, **options})
    result = measure(img, mask, nps, args.warmup)
    result.update(image=image.name, size=args.size, photo=f"{img.shape[1]}x{img.shape[0]}",
                  device=meter.device_name(args.device), torch=torch.__version__,
                  threads=torch.get_num_threads())
    if args.patchmatch:
        result.update(patchmatch_time(img, mask))
    if args.profile:
        write_text(args.profile, profile(img, mask, nps))
    for key, value in result.items():
        print(f"{key:>22}: {value:.2f}" if isinstance(value, float) else f"{key:>22}: {value}")
    if args.json:
        write_text(args.json, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
