"""Content-network training: data, holes, losses, checkpoints and exact resumption."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neural_patch_synth.api import resolve_device
from neural_patch_synth.cli import main
from neural_patch_synth.errors import NPSError
from neural_patch_synth.masks import (
    centre_square_mask,
    edge_band_mask,
    random_block_mask,
    random_training_mask,
)
from neural_patch_synth.prior import train as train_mod
from neural_patch_synth.prior.network import ARCHITECTURES, NetworkPrior, build
from neural_patch_synth.prior.train import (
    OUTSIDE_WEIGHT,
    decode,
    deferred_interrupts,
    image_files,
    learning_rate,
    sample_batch,
    train_content,
    train_step,
)


def write_photos(folder: Path, count: int = 6, side: int = 140) -> Path:
    """Smooth synthetic photos (colour gradients and a disc), ``count`` PNGs of ``side``²."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:side, 0:side] / side
    for i in range(count):
        a = rng.uniform(0.2, 1.0, 3)
        img = np.stack([a[0] * yy, a[1] * xx, a[2] * (1 - yy)], axis=-1)
        img[(yy - 0.5) ** 2 + (xx - rng.uniform(0.3, 0.7)) ** 2 < 0.03] = rng.uniform(0, 1, 3)
        Image.fromarray((img * 255).astype(np.uint8)).save(folder / f"{i:02d}.png")
    return folder


def train(data: Path, out: Path, **kw: object) -> Path:
    """A tiny, fast training run (validated on its own photos)."""
    options = {"val_data": data, "steps": 4, "batch_size": 2, "lr": 1e-3, "val_every": 2,
               "device": "cpu", "quiet": True, "arch": "pconv", "width": 4, **kw}
    return train_content(data, out, **options)


def checkpoint_state(out: Path) -> dict:
    return torch.load(out / "checkpoint.pt", weights_only=False)


def assert_same_run(a: Path, b: Path) -> None:
    ca, cb = checkpoint_state(a), checkpoint_state(b)
    assert (ca["step"], ca["best_val"]) == (cb["step"], cb["best_val"])
    for key, value in ca["model"].items():
        assert torch.equal(value, cb["model"][key]), key
    assert torch.equal(ca["opt"]["state"][0]["exp_avg"], cb["opt"]["state"][0]["exp_avg"])


def test_training_masks() -> None:
    assert centre_square_mask(128, 64).mean() == 0.25
    assert centre_square_mask(128, 64)[32:96, 32:96].all()
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert random_block_mask(rng).any()
        band = edge_band_mask(rng)
        depth = band.any(axis=1).sum() if band[:, 64].all() else band.any(axis=0).sum()
        assert 16 <= depth <= 128
        assert band[[0, -1]].any() or band[:, [0, -1]].any()
    masks = [random_training_mask(rng) for _ in range(200)]
    assert all(m.shape == (128, 128) and m.any() for m in masks)
    centre = centre_square_mask(128, 64)
    assert 0.2 < np.mean([np.array_equal(m, centre) for m in masks]) < 0.4
    touching = [m[[0, -1]].any() or m[:, [0, -1]].any() for m in masks]
    assert np.mean(touching) > 0.2  # border holes for outpainting
    a = [random_training_mask(np.random.default_rng(3)) for _ in range(2)]
    assert np.array_equal(a[0], a[1])


def test_sample_batch() -> None:
    photos = np.random.default_rng(0).integers(0, 256, (5, 128, 128, 3), dtype=np.uint8)
    images, masks = sample_batch(photos, 3, np.random.default_rng(0))
    assert images.shape == (3, 3, 128, 128) and masks.shape == (3, 1, 128, 128)
    assert 0 <= float(images.min()) and float(images.max()) <= 1
    assert set(masks.unique().tolist()) <= {0.0, 1.0}


def test_learning_rate_schedule() -> None:
    assert learning_rate(1.0, 0, 100) == 1.0
    assert learning_rate(1.0, 69, 100) == 1.0
    assert learning_rate(1.0, 100, 100) == pytest.approx(0.1)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_steps_lower_the_loss(tmp_path: Path, arch: str, device: torch.device) -> None:
    torch.manual_seed(0)
    photos = np.stack([np.asarray(Image.open(p))[:128, :128] for p in
                       sorted(write_photos(tmp_path / "photos").iterdir())])
    images, masks = (t.to(device) for t in sample_batch(photos, 4, np.random.default_rng(0)))
    model = build(arch, 8).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = [train_step(model, opt, images, masks) for _ in range(30)]
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


def test_log_mse_loss_is_the_mean_negative_hole_psnr() -> None:
    """``log-mse``: per image ln(hole MSE + 1e-3), averaged, so a thin hole counts as much
    as a large one; plus the known-pixel L1 term."""
    torch.manual_seed(0)
    images = torch.rand(2, 3, 128, 128)
    masks = torch.zeros(2, 1, 128, 128)
    masks[0, :, 32:96, 32:96] = 1  # large hole
    masks[1, :, 60:62, :] = 1  # thin hole
    model = build("pconv", 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    with torch.no_grad():
        diff = model(images, masks) - images
    mse = (diff ** 2 * masks).sum(dim=(1, 2, 3)) / (3 * masks.sum(dim=(1, 2, 3)))
    outside = (diff.abs() * (1 - masks)).sum() / (3 * (1 - masks).sum())
    expected = torch.log(mse + 1e-3).mean() + OUTSIDE_WEIGHT * outside
    assert train_step(model, opt, images, masks, "log-mse") == pytest.approx(float(expected),
                                                                             rel=1e-5)
    l1 = (diff.abs() * masks).sum() / (3 * masks.sum()) + OUTSIDE_WEIGHT * outside
    assert train_step(model, opt, images, masks, "l1") == pytest.approx(float(l1), rel=1e-5)


def test_init_starts_from_weights(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    photos = write_photos(tmp_path / "photos")
    first = train(photos, tmp_path / "first")
    again = train(photos, tmp_path / "again", init=first, arch="v1", lr=1e-12, steps=1,
                  loss="log-mse")  # the file's architecture replaces arch
    state = checkpoint_state(tmp_path / "again")
    assert (state["arch"], state["width"], state["loss"]) == ("pconv", 4, "log-mse")
    a, b = (torch.load(p, weights_only=True)["state_dict"] for p in (first, again))
    assert all(torch.equal(a[k], b[k]) for k in a)  # 1e-12 × one step vanishes in fp16
    assert not caplog.records
    train(photos, tmp_path / "first", init=again, steps=2)  # resumes: --init is not used
    assert "--init" in caplog.text and "is not used" in caplog.text
    with pytest.raises(NPSError, match="not a content-network weights file"):
        train(photos, tmp_path / "bad", init=photos / "00.png")


def test_init_with_a_larger_width_widens_and_starts_from_the_same_function(
        tmp_path: Path, device: torch.device) -> None:
    photos = write_photos(tmp_path / "photos")
    first = train(photos, tmp_path / "first")
    wide = train(photos, tmp_path / "wide", init=first, width=6, lr=1e-12, steps=1,
                 device=device.type)  # widened where it is trained
    assert checkpoint_state(tmp_path / "wide")["width"] == 6
    image, mask = torch.rand(2, 3, 128, 128), torch.zeros(2, 1, 128, 128)
    mask[..., 40:90, 30:100] = 1
    a, b = (NetworkPrior.from_file(p, torch.device("cpu")).model(image, mask)
            for p in (first, wide))
    assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(NPSError, match="only a pconv network can be widened"):
        train(photos, tmp_path / "narrow", init=first, width=2)
    v1 = train(photos, tmp_path / "v1", arch="v1", steps=1)
    with pytest.raises(NPSError, match="only a pconv network can be widened"):
        train(photos, tmp_path / "v1-wide", init=v1, width=6)


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(NPSError, match="not found"):
        train(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NPSError, match="no images"):
        train(tmp_path / "empty", tmp_path / "out")
    photos = write_photos(tmp_path / "photos", count=1)
    with pytest.raises(NPSError):
        train(photos, tmp_path / "out", val_data=str(tmp_path / "nope"))
    with pytest.raises(NPSError):
        train(photos, tmp_path / "out", steps=0)
    with pytest.raises(NPSError, match="width"):
        train(photos, tmp_path / "out", width=0)
    with pytest.raises(NPSError, match="workers"):
        train(photos, tmp_path / "out", workers=-1)
    with pytest.raises(NPSError, match="unknown loss 'l2'"):
        train(photos, tmp_path / "out", loss="l2")
    with pytest.raises(NPSError, match="unknown device 'gpu'"):
        train(photos, tmp_path / "out", device="gpu")
    with pytest.raises(NPSError, match="unknown device"):
        resolve_device("tpu")


def test_training_reads_photos_like_inpainting(tmp_path: Path) -> None:
    """The photo loader of :mod:`neural_patch_synth.io`: TIFF too, EXIF orientation applied."""
    px = np.zeros((140, 160, 3), np.uint8)
    px[:, :80, 0] = 255  # left half red, right half blue
    px[:, 80:, 2] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90° clockwise: red on top
    Image.fromarray(px).save(tmp_path / "turned.jpg", exif=exif.tobytes(), quality=95)
    Image.fromarray(px).save(tmp_path / "scan.tif")
    assert [p.name for p in image_files(tmp_path)] == ["scan.tif", "turned.jpg"]
    turned = decode(tmp_path / "turned.jpg")
    assert turned.shape == (128, 128, 3)
    assert turned[:60, :, 0].mean() > 200 and turned[-60:, :, 2].mean() > 200


def test_cli_unpacks_options(tmp_path: Path) -> None:
    photos = write_photos(tmp_path / "photos", count=2)
    assert main(["train-content", "--data", str(photos), "--out", str(tmp_path / "run"),
                 "--steps", "1", "--batch-size", "1", "--arch", "attention", "--width", "4",
                 "--loss", "log-mse", "--cache", str(tmp_path / "cache"), "--device", "cpu",
                 "-q"]) == 0
    state = checkpoint_state(tmp_path / "run")
    assert (state["arch"], state["width"], state["loss"]) == ("attention", 4, "log-mse")
    assert len(list((tmp_path / "cache").glob("photos-*.npy"))) == 1
    assert not list((tmp_path / "run").glob("photos-*"))


def test_runs_share_a_photo_cache_and_a_broken_build_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    photos = write_photos(tmp_path / "photos")
    train(photos, tmp_path / "own")
    shared = tmp_path / "shared"
    train(photos, tmp_path / "a", cache=shared)
    train(photos, tmp_path / "b", cache=shared, steps=2)
    assert_same_run(tmp_path / "own", tmp_path / "a")  # the same photos, wherever cached
    assert [p.name for p in shared.iterdir()] == [p.name for p in (tmp_path / "own").glob(
        "photos-*.npy")]  # one cache, decoded once, no temporary file
    assert not list((tmp_path / "b").glob("photos-*"))
    real = train_mod.decode
    calls = []

    def failing(path: Path, side: int | None = 128):
        if side is not None:  # building the cache (validation photos are read at full size)
            calls.append(path)
            if len(calls) == 3:
                raise KeyboardInterrupt
        return real(path, side)

    monkeypatch.setattr(train_mod, "decode", failing)
    with pytest.raises(KeyboardInterrupt):
        train(photos, tmp_path / "c", cache=tmp_path / "broken")
    assert list((tmp_path / "broken").iterdir()) == []


def test_run_exports_weights_and_log(tmp_path: Path, device: torch.device) -> None:
    photos = write_photos(tmp_path / "photos")
    weights = train(photos, tmp_path / "run", device=device.type)
    assert weights == tmp_path / "run" / "content_net.pt"
    prior = NetworkPrior.from_file(weights, torch.device("cpu"))
    assert prior.model.width == 4 and type(prior.model).__name__ == "PConvUNet"
    log = (tmp_path / "run" / "log.jsonl").read_text()
    records = [json.loads(line) for line in log.splitlines()]
    scores = [r["val_hole_psnr"] for r in records if "val_hole_psnr" in r]
    assert [r["step"] for r in records if "val_hole_psnr" in r] == [2, 4]
    assert records[-1]["event"] == "done"
    # the best validation so far is exported when it is reached, and remembered
    assert records[0]["best"] and records[1].get("best", False) == (scores[1] > scores[0])
    best = NetworkPrior.from_file(tmp_path / "run" / "best_content_net.pt", torch.device("cpu"))
    images = train_mod.validation_set(photos)
    assert train_mod.validate(best.model, images, torch.device("cpu")) == pytest.approx(
        max(scores), abs=0.05)  # fp16 weights
    assert checkpoint_state(tmp_path / "run")["best_val"] == max(scores)


def test_resume_after_max_minutes_equals_uninterrupted(tmp_path: Path) -> None:
    photos = write_photos(tmp_path / "photos")
    train(photos, tmp_path / "whole", steps=5)
    for expected_step in (1, 2, 3, 4, 5):  # max_minutes=0: one step per call
        train(photos, tmp_path / "pieces", steps=5, max_minutes=0)
        assert checkpoint_state(tmp_path / "pieces")["step"] == expected_step
        assert (tmp_path / "pieces" / "content_net.pt").exists()
    assert_same_run(tmp_path / "whole", tmp_path / "pieces")
    for name in ("content_net.pt", "best_content_net.pt"):
        whole = (tmp_path / "whole" / name).read_bytes()
        assert whole == (tmp_path / "pieces" / name).read_bytes()
    train(photos, tmp_path / "workers", steps=5, workers=2)  # batches drawn in two processes
    assert_same_run(tmp_path / "whole", tmp_path / "workers")


def test_interrupt_checkpoints_and_resumes(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    photos = write_photos(tmp_path / "photos")
    train(photos, tmp_path / "whole", steps=4, val_every=3)
    calls = []

    def interrupting_step(*args: object) -> float:
        losses = train_step(*args)  # type: ignore[arg-type]
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return losses

    monkeypatch.setattr(train_mod, "train_step", interrupting_step)
    with pytest.raises(KeyboardInterrupt):
        train(photos, tmp_path / "split", steps=4, val_every=3)
    assert checkpoint_state(tmp_path / "split")["step"] == 2
    monkeypatch.setattr(train_mod, "train_step", train_step)
    train(photos, tmp_path / "split", steps=4, val_every=3)
    assert_same_run(tmp_path / "whole", tmp_path / "split")


def test_deferred_interrupts() -> None:
    with deferred_interrupts() as received:
        os.kill(os.getpid(), signal.SIGINT)
    assert received == [signal.SIGINT]
