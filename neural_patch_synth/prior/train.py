"""Training of the content network (``nps train-content``): resumable, deterministic.

Random flips of the training photos (cached at 128²: shorter side resized, centre-cropped),
holes mixed by :func:`~neural_patch_synth.masks.random_training_mask` (centre squares, random
blocks, irregular strokes of every area category, holes touching the border); loss = a hole term
(L1, or the per-image log of the hole MSE: :data:`LOSSES`) + a little L1 outside, summed over
the network's stages; ``--init`` starts from trained weights (fine-tuning; a larger ``--width``
widens them first); Adam, learning rate decayed linearly over the last 30 % of the steps. Photos
are decoded once into a uint8 ``.npy`` cache (in the run folder, or ``--cache``). Step ``k``'s
batch depends only on ``(seed, k)``, so ``--workers`` processes can draw batches ahead of the
network (a GPU outruns one CPU core) without changing them. A checkpoint (model, optimiser,
step, the global RNG states) is written every ``--val-every`` steps, at the end, on
``--max-minutes`` expiry and on Ctrl-C / SIGTERM (after the current step); rerunning the same
command continues exactly where it stopped. ``OUT/content_net.pt`` (fp16 weights) is exported
whenever training stops, and ``OUT/best_content_net.pt`` whenever the validation PSNR reaches a
new best (a long run may overfit: its last weights are not always its best).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..api import resolve_device
from ..errors import NPSError
from ..io import IMAGE_EXTENSIONS, load_image, replace_file, to_8bit
from ..masks import centre_square_mask, random_training_mask
from .layers import SIZE, Predictor
from .network import arch_name, architecture, build, load_weights, save_weights
from .pconv import PConvUNet

logger = logging.getLogger(__name__)

VAL_IMAGES = 200
"""Size of the fixed validation subset."""
OUTSIDE_WEIGHT = 0.1
"""Weight of the L1 term on known pixels, relative to the hole term."""
DEFAULT_ARCH, DEFAULT_WIDTH, DEFAULT_STEPS = "pconv", 24, 15000
"""Architecture, width and steps of v2, the CPU-sized recipe (v2.2, shipped, is wider and was
trained on a GPU: the model card)."""
DECAY_START = 0.7
"""Fraction of ``--steps`` after which the learning rate falls linearly to 10 % at the end."""


def image_files(folder: str | Path) -> list[Path]:
    """Sorted image files directly in ``folder``; NPSError if it is missing or has none."""
    path = Path(folder)
    if not path.is_dir():
        raise NPSError(f"image folder not found: {path}")
    files = sorted(p for p in path.iterdir()
                   if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise NPSError(f"no images in {path}")
    return files


def decode(path: Path, side: int | None = SIZE) -> np.ndarray:
    """``(side, side, 3)`` uint8 RGB: the photo as :func:`~neural_patch_synth.io.load_image`
    reads it (size checked, orientation applied, 16 bits rounded to 8), shorter side resized
    to ``side`` (None: kept, but at least 128), centre-cropped."""
    im = Image.fromarray(to_8bit(load_image(path).pixels))
    side = side or max(SIZE, min(im.size))
    scale = side / min(im.size)
    if scale != 1.0:
        size = (max(side, round(im.width * scale)), max(side, round(im.height * scale)))
        im = im.resize(size, Image.BICUBIC)
    x0, y0 = (im.width - side) // 2, (im.height - side) // 2
    return np.asarray(im.crop((x0, y0, x0 + side, y0 + side)))


def photo_cache(files: list[Path], cache_dir: Path, quiet: bool) -> Path:
    """A ``.npy`` cache of ``files``: an ``(N, 128, 128, 3)`` uint8 array.

    The cache is keyed by the file list (paths, sizes, mtimes) and built on first use through
    :func:`~neural_patch_synth.io.replace_file` (a temporary file renamed into place): runs that
    share ``cache_dir`` decode the photos once, and an interrupted build leaves nothing behind.
    """
    key = hashlib.sha1()
    for f in files:
        st = f.stat()
        key.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    path = cache_dir / f"photos-{key.hexdigest()[:12]}.npy"
    if not path.exists():
        def write(out: BinaryIO) -> None:
            header = {"descr": "|u1", "fortran_order": False, "shape": (len(files), SIZE, SIZE, 3)}
            np.lib.format.write_array_header_1_0(out, header)
            for f in tqdm(files, desc="decoding photos", disable=quiet):
                out.write(decode(f).astype(np.uint8).reshape(SIZE, SIZE, 3).tobytes())

        replace_file(path, write)
    return path


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 → ``(B, 3, H, W)`` float in ``[0, 1]``."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


def sample_batch(photos: np.ndarray, batch: int,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crops, flips and holes: images ``(B, 3, 128, 128)`` in ``[0, 1]``, masks
    ``(B, 1, 128, 128)`` in ``{0, 1}`` (1 = hole)."""
    n, h, w = photos.shape[:3]
    idx = rng.integers(0, n, batch)
    ys, xs = rng.integers(0, h - SIZE + 1, batch), rng.integers(0, w - SIZE + 1, batch)
    flips = rng.random(batch) < 0.5
    crops = []
    for i, y, x, flip in zip(idx, ys, xs, flips, strict=True):
        crop = photos[i, y:y + SIZE, x:x + SIZE]
        crops.append(crop[:, ::-1] if flip else crop)
    masks = np.stack([random_training_mask(rng, SIZE) for _ in range(batch)])
    return to_tensor(np.stack(crops)), torch.from_numpy(masks[:, None]).float()


class Batches(torch.utils.data.Dataset):
    """Training batches by step: item ``k`` is :func:`sample_batch` of ``batch`` photos from
    the cache at ``photos`` with the generator seeded by ``(seed, k)``, the same in any process
    and after any resumption. The cache is memory-mapped on first use, in each process."""

    def __init__(self, photos: Path, batch: int, seed: int) -> None:
        self.path, self.batch, self.seed = photos, batch, seed
        self.photos: np.ndarray | None = None

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.photos is None:
            self.photos = np.load(self.path, mmap_mode="r")
        return sample_batch(self.photos, self.batch, np.random.default_rng([self.seed, step]))


def validation_set(folder: str | Path, n: int = VAL_IMAGES) -> torch.Tensor:
    """Fixed subset of ``n`` photos evenly spread over the sorted folder, centre 128² crops at
    the photos' own scale: ``(n, 3, 128, 128)`` in ``[0, 1]``."""
    files = image_files(folder)
    picks = [files[i * len(files) // min(n, len(files))] for i in range(min(n, len(files)))]
    crops = []
    for f in picks:
        photo = decode(f, None)
        start = (len(photo) - SIZE) // 2
        crops.append(photo[start:start + SIZE, start:start + SIZE])
    return to_tensor(np.stack(crops))


def hole_psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) over hole pixels: ``pred``, ``target`` ``(B, 3, H, W)`` in
    ``[0, 1]``, ``mask`` ``(B, 1, H, W)`` (1 = hole). Returns ``(B,)``."""
    err = ((pred - target) ** 2 * mask).sum(dim=(1, 2, 3))
    mse = err / (3.0 * mask.sum(dim=(1, 2, 3))).clamp_min(1.0)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))


@torch.no_grad()
def validate(model: Predictor, images: torch.Tensor, device: torch.device,
             chunk: int = 50) -> float:
    """Mean hole PSNR of ``model`` on ``images`` (``(N, 3, 128, 128)``) with a 64² centre hole."""
    was_training = model.training
    model.eval()
    mask = torch.from_numpy(centre_square_mask(SIZE, SIZE // 2)).float()[None, None]
    scores = []
    for batch in images.split(chunk):
        x = batch.to(device)
        m = mask.to(device).expand(len(x), -1, -1, -1)
        out = model(x, m)
        scores.append(hole_psnr(out * m + x * (1 - m), x, m).cpu())
    model.train(was_training)
    return float(torch.cat(scores).mean())


LOSSES = ("l1", "log-mse")
"""Hole terms of :func:`train_step`: ``l1``, the mean absolute error over the batch's hole
pixels; ``log-mse``, the mean over images of ``ln(hole MSE + 1e-3)``, i.e. −hole PSNR up to
scale and offset, so each image counts alike whatever its hole's size."""


def train_step(model: Predictor, opt: torch.optim.Optimizer, image: torch.Tensor,
               mask: torch.Tensor, loss_kind: str = "l1") -> float:
    """One Adam step on ``image`` ``(B, 3, 128, 128)`` in ``[0, 1]`` with holes ``mask``
    ``(B, 1, 128, 128)`` (1 = hole); returns the loss: per stage, the hole term named by
    ``loss_kind`` (one of :data:`LOSSES`) plus ``OUTSIDE_WEIGHT`` × the mean L1 on known
    pixels, summed over stages."""
    knowns = (3.0 * (1 - mask).sum()).clamp_min(1.0)
    if loss_kind == "l1":  # over the batch's hole pixels
        holes = (3.0 * mask.sum()).clamp_min(1.0)

        def hole_term(diff: torch.Tensor) -> torch.Tensor:
            return (diff.abs() * mask).sum() / holes
    else:  # per image, then the mean
        per_image = (3.0 * mask.sum(dim=(1, 2, 3))).clamp_min(1.0)

        def hole_term(diff: torch.Tensor) -> torch.Tensor:
            return torch.log((diff ** 2 * mask).sum(dim=(1, 2, 3)) / per_image + 1e-3).mean()
    loss = image.new_zeros(())
    for out in model.stages(image, mask):
        diff = out - image
        outside = (diff.abs() * (1 - mask)).sum() / knowns
        loss = loss + hole_term(diff) + OUTSIDE_WEIGHT * outside
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def learning_rate(base: float, step: int, steps: int) -> float:
    """Learning rate for 0-based ``step`` of ``steps``: ``base``, then linear decay to 10 %."""
    start = DECAY_START * steps
    if step < start:
        return base
    return base * (1.0 - 0.9 * (step - start) / max(steps - start, 1.0))


def rng_states() -> dict:
    """The global RNG states (the batches have their own: :class:`Batches`)."""
    states = {"python": random.getstate(), "numpy": np.random.get_state(),
              "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    """Restore what :func:`rng_states` returned."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


@contextmanager
def deferred_interrupts() -> Iterator[list[int]]:
    """Record SIGINT / SIGTERM in the yielded list instead of raising mid-step."""
    received: list[int] = []
    try:
        old = {sig: signal.signal(sig, lambda num, _frame: received.append(num))
               for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals cannot be caught here
        old = {}
    try:
        yield received
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def train_content(data: str | os.PathLike, out: str | os.PathLike, *,
                  val_data: str | os.PathLike | None = None, arch: str = DEFAULT_ARCH,
                  width: int | None = None, steps: int = DEFAULT_STEPS, batch_size: int = 16,
                  lr: float = 5e-4, loss: str = "l1", init: str | os.PathLike | None = None,
                  val_every: int = 250, max_minutes: float | None = None,
                  cache: str | os.PathLike | None = None, device: str = "auto", seed: int = 0,
                  workers: int | None = None, quiet: bool = False) -> Path:
    """Train (or resume) a content network on the photos in ``data``; returns the exported
    weights (``out/content_net.pt``).

    ``out`` is the run folder (checkpoint, log, photo cache); ``val_data`` a folder of
    validation photos; ``arch`` one of :data:`~.network.ARCHITECTURES` and ``width`` its size
    (None: :data:`DEFAULT_WIDTH`); ``steps`` the total optimisation steps; ``loss`` the hole
    term (:data:`LOSSES`); ``init`` a weights file to start from (its architecture replaces
    ``arch``; the optimiser starts afresh), and a ``width`` above the file's widens a ``pconv``
    network first (:meth:`~.pconv.PConvUNet.widened`: it starts computing exactly what the file
    does); ``val_every`` the steps between validations and checkpoints;
    ``max_minutes`` stops early with a checkpoint (rerun to resume); ``cache`` the folder of
    the decoded-photo cache (default ``out``; runs may share one); ``workers`` the processes
    that draw batches ahead (0: in this one; None: 0 on a CPU, up to 8 on a GPU; the batches
    are the same). A resumed run keeps the architecture, width and loss of its checkpoint. The
    model card gives the recipe of each shipped model.
    """
    if (steps < 1 or batch_size < 1 or val_every < 1 or (width is not None and width < 1)
            or not lr > 0 or (workers is not None and workers < 0)):
        raise NPSError("steps, batch size, validation interval, width and learning rate must "
                       "be positive, workers not negative")
    if loss not in LOSSES:
        raise NPSError(f"unknown loss {loss!r} (choose from {', '.join(LOSSES)})")
    dev = resolve_device(device)
    if workers is None:  # one CPU core cannot keep a GPU fed
        workers = 0 if dev.type == "cpu" else min(8, (os.cpu_count() or 1) - 1)
    architecture(arch)  # fails fast on an unknown name
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = image_files(data)
    val_images = validation_set(val_data) if val_data else None

    ckpt_path, log_path = out / "checkpoint.pt", out / "log.jsonl"
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    step, elapsed, best, ckpt = 0, 0.0, -math.inf, None
    if ckpt_path.exists():
        try:
            ckpt = torch.load(ckpt_path, map_location=dev, weights_only=False)
            arch, width, loss = ckpt["arch"], ckpt["width"], ckpt.get("loss", "l1")
        except (OSError, RuntimeError, KeyError) as err:
            raise NPSError(f"unreadable checkpoint {ckpt_path}: {err}") from err
    if ckpt is not None and init is not None:
        logger.warning("resuming from %s at step %d: --init %s is not used (another --out "
                       "starts afresh from it)", ckpt_path, ckpt["step"], init)
    if ckpt is None and init is not None:
        model = load_weights(Path(init), dev)
        arch = arch_name(model)
        if width is not None and width != model.width:
            if not isinstance(model, PConvUNet) or width < model.width:
                raise NPSError(f"--width {width} with --init: only a pconv network can be "
                               f"widened, not narrowed ({init} is a width-{model.width} {arch} "
                               "network)")
            model = model.widened(width).to(dev)
        width = model.width
    else:
        width = DEFAULT_WIDTH if width is None else width
        model = build(arch, width).to(dev)
    cache_dir = out if cache is None else Path(cache)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise NPSError(f"cannot make the photo cache folder {cache_dir}: {err}") from None
    photos = photo_cache(files, cache_dir, quiet)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    if ckpt is not None:
        try:
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["opt"])
        except (RuntimeError, KeyError, ValueError) as err:
            raise NPSError(f"unreadable checkpoint {ckpt_path}: {err}") from err
        step, elapsed, best = ckpt["step"], ckpt["elapsed"], ckpt.get("best_val", -math.inf)
        set_rng_states(ckpt["rng"])
    model.train()

    def checkpoint() -> None:
        state = {"step": step, "elapsed": elapsed, "best_val": best, "arch": arch,
                 "width": width, "loss": loss, "model": model.state_dict(),
                 "opt": opt.state_dict(), "rng": rng_states()}
        replace_file(ckpt_path, lambda fh: torch.save(state, fh))

    def log(record: dict) -> None:
        with log_path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    start = time.monotonic()
    deadline = start + max_minutes * 60 if max_minutes is not None else None
    bar = tqdm(total=steps, initial=step, disable=quiet, desc=f"train-content {arch}")
    losses: list[float] = []
    reason = "done"
    batches = iter(torch.utils.data.DataLoader(
        Batches(photos, batch_size, seed), batch_size=None, sampler=range(step, steps),
        num_workers=workers, prefetch_factor=4 if workers else None,
        pin_memory=dev.type == "cuda"))
    with deferred_interrupts() as received:
        while step < steps:
            t0 = time.monotonic()
            for group in opt.param_groups:
                group["lr"] = learning_rate(lr, step, steps)
            images, masks = (t.to(dev, non_blocking=True) for t in next(batches))
            losses.append(train_step(model, opt, images, masks, loss))
            elapsed += time.monotonic() - t0
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
            if step % val_every == 0 or step == steps:
                record = {"step": step, "loss": float(np.mean(losses)),
                          "train_seconds": round(elapsed, 1),
                          "threads": torch.get_num_threads(), "time": time.time()}
                if val_images is not None:
                    record["val_hole_psnr"] = validate(model, val_images, dev)
                    if record["val_hole_psnr"] > best:
                        best = record["val_hole_psnr"]
                        save_weights(model, out / "best_content_net.pt")
                        record["best"] = True
                log(record)
                if not quiet:
                    bar.write(json.dumps(record))
                losses.clear()
                checkpoint()
            if received:
                reason = "interrupted"
                break
            if deadline is not None and time.monotonic() >= deadline and step < steps:
                reason = "max-minutes"
                break
    bar.close()
    checkpoint()
    weights = out / "content_net.pt"
    save_weights(model, weights)
    log({"event": reason, "step": step, "train_seconds": round(elapsed, 1), "time": time.time()})
    if reason == "interrupted":
        raise KeyboardInterrupt
    if not quiet:
        print(f"{reason}: step {step}/{steps}, weights {weights}")
    return weights
