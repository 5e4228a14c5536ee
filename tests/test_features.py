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


def test_normalisation_and_first_convolution_by_hand(tmp_path):
    """relu1_1 on a 2×2 photo, worked out by hand with torchvision's ImageNet constants written
    out: inputs are normalised with them, then cross-correlated with zero padding."""
    weight, bias = torch.zeros(64, 3, 3, 3), torch.zeros(64)
    weight[0, 0, 1, 1] = 1.0  # channel 0: red at the pixel
    weight[1, 2, 0, 0] = 1.0  # channel 1: blue up and to the left (padding outside)
    weight[2, 1, 1, 2] = -2.0  # channel 2: -2 × green to the right
    bias[3] = 0.5  # channel 3: the bias alone
    path = tmp_path / "vgg.pth"
    torch.save({"features.0.weight": weight, "features.0.bias": bias}, path)
    red, green, blue = [[0.9, 0.1], [0.5, 0.3]], [[0.2, 0.0], [0.7, 0.4]], [[1.0, 0.6], [0.3, 0.2]]
    out = load_vgg(("relu1_1",), path)(torch.tensor([[red, green, blue]]))["relu1_1"][0]

    def relu(v: float) -> float:
        return max(v, 0.0)

    expected = [
        [[relu((0.9 - 0.485) / 0.229), 0.0], [relu((0.5 - 0.485) / 0.229), 0.0]],
        [[0.0, 0.0], [0.0, relu((1.0 - 0.406) / 0.225)]],
        [[relu(-2 * (0.0 - 0.456) / 0.224), 0.0], [relu(-2 * (0.4 - 0.456) / 0.224), 0.0]],
        [[0.5, 0.5], [0.5, 0.5]],
    ]
    assert torch.allclose(out[:4], torch.tensor(expected), atol=1e-6)
    assert not out[4:].any()
