"""Content network: shapes, mask handling, batch invariance, weights files, shipped weights."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from neural_patch_synth.errors import NPSError
from neural_patch_synth.masks import centre_square_mask
from neural_patch_synth.prior import PRETRAINED, load_prior
from neural_patch_synth.prior.layers import mean_fill
from neural_patch_synth.prior.network import (
    ARCHITECTURES,
    NetworkPrior,
    build,
    load_weights,
    save_weights,
)

NO_WEIGHTS = "no shipped weights (pretrained/content_net.pt)"
DATA = Path(os.environ.get("NPS_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def centre_masks(n: int) -> torch.Tensor:
    return torch.from_numpy(centre_square_mask(128, 64)).float()[None, None].repeat(n, 1, 1, 1)


@pytest.fixture(params=list(ARCHITECTURES))
def prior(tmp_path: Path, request: pytest.FixtureRequest, device: torch.device) -> NetworkPrior:
    """Each architecture, on each device; it takes and returns CPU tensors as a caller's."""
    torch.manual_seed(0)
    path = tmp_path / "net.pt"
    save_weights(build(request.param, 4), path)
    return NetworkPrior.from_file(path, device)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_networks_shape_and_range(arch: str) -> None:
    torch.manual_seed(0)
    with torch.no_grad():
        outs = build(arch, 4).stages(torch.rand(2, 3, 128, 128), centre_masks(2))
    assert len(outs) == (2 if arch == "attention" else 1)
    for out in outs:
        assert out.shape == (2, 3, 128, 128)
        assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0


def test_unknown_architecture() -> None:
    with pytest.raises(NPSError, match="unknown architecture 'gan'"):
        build("gan", 8)


def test_mean_fill() -> None:
    image = torch.rand(2, 3, 8, 8)
    mask = torch.zeros(2, 1, 8, 8)
    mask[0, :, 2:5, 2:5] = 1
    mask[1] = 1
    out = mean_fill(image, mask)
    known = mask[0, 0] == 0
    assert torch.equal(out[0][:, known], image[0][:, known])
    expected = image[0][:, known].mean(dim=1)
    assert torch.allclose(out[0, :, 3, 3], expected, atol=1e-6)
    assert torch.allclose(out[1], torch.full_like(out[1], 0.5))


def test_prior_keeps_known_pixels(prior: NetworkPrior) -> None:
    image, mask = torch.rand(1, 3, 128, 128), centre_masks(1)
    out = prior(image, mask)
    assert prior.size == 128 and out.shape == image.shape and out.dtype == image.dtype
    known = mask[0, 0] == 0
    assert torch.equal(out[0][:, known], image[0][:, known])
    assert not prior.model.training


def test_prior_ignores_hole_values(prior: NetworkPrior) -> None:
    image, mask = torch.rand(1, 3, 128, 128), centre_masks(1)
    other = image.clone()
    other[mask.expand_as(image) > 0] = 0.0
    assert torch.allclose(prior(image, mask), prior(other, mask), atol=1e-6)


def tolerance(prior: NetworkPrior, cpu: float) -> float:
    """``cpu`` on the CPU; on CUDA, convolutions run in TF32 (10-bit mantissa, torch's
    default) with algorithms that depend on the batch, so sums agree to about 1e-3."""
    return cpu if prior.device.type == "cpu" else 5e-3


def test_single_equals_batched(prior: NetworkPrior) -> None:
    images, masks = torch.rand(3, 3, 128, 128), centre_masks(3)
    masks[1, :, :40, :] = 1
    batched = prior(images, masks)
    single = torch.cat([prior(images[i:i + 1], masks[i:i + 1]) for i in range(3)])
    assert torch.allclose(batched, single, atol=tolerance(prior, 1e-5))


def test_prior_averages_the_mirror_image(prior: NetworkPrior) -> None:
    """The fill of a mirrored photo is the mirrored fill, and it is the mean of the network's
    fills of the photo and of its mirror."""
    image, mask = torch.rand(1, 3, 128, 128), centre_masks(1)
    mask[..., 30:50, 10:40] = 1  # not symmetric
    out = prior(image, mask)
    assert torch.allclose(prior(image.flip(-1), mask.flip(-1)).flip(-1), out,
                          atol=tolerance(prior, 1e-6))
    x, m = image.to(prior.device), mask.to(prior.device)
    with torch.no_grad():
        pair = (prior.model(x, m) + prior.model(x.flip(-1), m.flip(-1)).flip(-1)).cpu()
    assert torch.allclose(out * mask, pair / 2 * mask, atol=tolerance(prior, 1e-6))


def test_prior_rejects_wrong_size(prior: NetworkPrior) -> None:
    with pytest.raises(NPSError):
        prior(torch.rand(1, 3, 64, 64), torch.zeros(1, 1, 64, 64))


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_weights_roundtrip_fp16(tmp_path: Path, arch: str) -> None:
    model = build(arch, 4)
    path = tmp_path / "net.pt"
    save_weights(model, path)
    blob = torch.load(path, weights_only=True)
    assert blob["config"]["arch"] == arch
    assert all(v.dtype == torch.float16 for v in blob["state_dict"].values())
    loaded = load_weights(path, torch.device("cpu"))
    assert type(loaded) is type(model)
    for key, value in model.state_dict().items():
        assert torch.allclose(loaded.state_dict()[key], value.half().float())


def test_bad_weights_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(NPSError):
        NetworkPrior.from_file(path, torch.device("cpu"))


def test_default_network_fits_20mb() -> None:
    from neural_patch_synth.prior.train import DEFAULT_ARCH, DEFAULT_WIDTH

    params = sum(p.numel() for p in build(DEFAULT_ARCH, DEFAULT_WIDTH).parameters())
    assert 2 * params < 20e6


@pytest.mark.skipif(not PRETRAINED.exists(), reason=NO_WEIGHTS)
def test_shipped_weights_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NPS_CONTENT_WEIGHTS", raising=False)
    assert PRETRAINED.stat().st_size <= 20 * 1024 * 1024
    prior = load_prior("network", torch.device("cpu"))
    assert isinstance(prior, NetworkPrior) and prior.size == 128


@pytest.mark.skipif(not PRETRAINED.exists(), reason=NO_WEIGHTS)
@pytest.mark.skipif(not (DATA / "scenes" / "val").is_dir(),
                    reason=f"data folder absent: {DATA} (set NPS_DATA)")
def test_shipped_weights_beat_mean_fill(monkeypatch: pytest.MonkeyPatch) -> None:
    from neural_patch_synth.prior.train import hole_psnr, validation_set

    monkeypatch.delenv("NPS_CONTENT_WEIGHTS", raising=False)
    prior = load_prior("network", torch.device("cpu"))
    images = validation_set(DATA / "scenes" / "val", 16)
    masks = centre_masks(len(images))
    network = hole_psnr(prior(images, masks), images, masks).mean()
    baseline = hole_psnr(mean_fill(images, masks), images, masks).mean()
    assert network > baseline + 0.5


def test_v1_files_without_arch_still_load(tmp_path: Path) -> None:
    """Weights written before the architecture was recorded are v1 networks."""
    model = build("v1", 4)
    path = tmp_path / "old.pt"
    state = {k: v.half() for k, v in model.state_dict().items()}
    torch.save({"config": {"width": 4, "size": 128}, "state_dict": state}, path)
    assert type(load_weights(path, torch.device("cpu"))) is type(model)
