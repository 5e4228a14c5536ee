import pytest
import torch

from neural_patch_synth import NPSError
from neural_patch_synth.features import (
    LAYER_NAMES,
    layer_stride,
    load_vgg,
    receptive_field,
    weights_path,
)


def test_layout_matches_torchvision_indices():
    # torchvision's vgg19().features: relu1_1 at 1, relu2_1 at 6, relu3_1 at 11, relu4_1 at 20
    for name, idx in [("relu1_1", 1), ("relu2_1", 6), ("relu3_1", 11), ("relu4_1", 20),
                      ("relu5_1", 29)]:
        assert LAYER_NAMES.index(name) == idx


def test_strides_and_receptive_fields():
    assert [layer_stride(n) for n in ("relu1_1", "relu2_1", "relu3_1", "relu4_1")] == [1, 2, 4, 8]
    assert receptive_field("relu1_1") == 3
    assert receptive_field("relu3_1") == 24


def test_partial_weights_build_only_as_deep_as_they_go(vgg_weights):
    vgg = load_vgg(("relu2_1", "relu3_1"), vgg_weights)
    out = vgg(torch.rand(2, 3, 32, 40))
    assert out["relu2_1"].shape == (2, 128, 16, 20)
    assert out["relu3_1"].shape == (2, 256, 8, 10)
    assert not any(p.requires_grad for p in vgg.parameters())
    with pytest.raises(NPSError, match="relu4_1 needs conv3_2"):
        load_vgg(("relu4_1",), vgg_weights)


def test_bad_layer_and_missing_file(vgg_weights, tmp_path, monkeypatch):
    with pytest.raises(NPSError, match="unknown VGG-19 layer"):
        load_vgg(("relu9_9",), vgg_weights)
    with pytest.raises(NPSError, match="not found"):
        weights_path(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(NPSError, match="could not read"):
        load_vgg(("relu3_1",), bad)
    monkeypatch.setenv("NPS_VGG_WEIGHTS", str(vgg_weights))
    assert weights_path() == vgg_weights


def test_imagenet_weights_give_the_torchvision_convention(imagenet_vgg):
    vgg = load_vgg(("relu1_1",), imagenet_vgg)
    x = torch.rand(1, 3, 16, 16)
    conv = vgg.body[0]
    expected = torch.relu(conv((x - vgg.mean) / vgg.std))
    assert torch.allclose(vgg(x)["relu1_1"], expected)
