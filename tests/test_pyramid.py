import numpy as np
import torch

from neural_patch_synth.pyramid import downsample, level_count, level_sizes, pyramid_sizes, resize


def test_pyramid_sizes():
    assert pyramid_sizes(512, 512, 128) == [(128, 128), (256, 256), (512, 512)]
    assert pyramid_sizes(513, 257, 128) == [(128, 64), (256, 128), (513, 257)]
    assert pyramid_sizes(2048, 1536, 128) == [(128, 96), (256, 192), (512, 384), (1024, 768),
                                              (2048, 1536)]
    assert pyramid_sizes(90, 70, 128) == [(90, 70)]
    assert level_sizes(512, 384, 3) == [(128, 96), (256, 192), (512, 384)]


def test_level_count_follows_the_hole_depth_and_the_smallest_side():
    square = np.zeros((512, 512), bool)
    square[128:384, 128:384] = True  # depth 128 px: 128 / 2⁴ = 8 → 5 levels, coarsest 32 px
    assert level_count(square, reach=8, min_side=32) == 5
    assert level_count(square, reach=8, min_side=64) == 4
    stroke = np.zeros((512, 512), bool)
    stroke[100:106, :] = True  # 3 px from known pixels everywhere: no coarse level needed
    assert level_count(stroke, reach=8, min_side=32) == 1


def test_downsample_never_leaks_hole_values():
    img = torch.rand(1, 3, 8, 8)
    hole = torch.zeros(1, 1, 8, 8)
    hole[..., 2:5, 2:5] = 1
    img_poisoned = img.clone()
    img_poisoned[hole.expand_as(img) > 0] = 1e6
    a, ha = downsample(img, hole, (4, 4))
    b, hb = downsample(img_poisoned, hole, (4, 4))
    assert torch.equal(ha, hb)
    assert torch.allclose(a[(ha < 0.5).expand_as(a)], b[(hb < 0.5).expand_as(b)])
    assert ha[0, 0].tolist() == [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    c, hc = downsample(img_poisoned, hole, (4, 4), majority=True)
    # only the cell wholly in the hole stays a hole; cells half in it are known, valued from
    # their known pixels alone
    assert hc[0, 0].tolist() == [[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert c.max() <= 1


def test_resize_clamps_and_keeps_same_size():
    x = torch.rand(1, 3, 16, 16)
    assert resize(x, (16, 16)) is x
    up = resize(x, (40, 40))
    assert up.shape == (1, 3, 40, 40) and up.min() >= 0 and up.max() <= 1
    assert torch.allclose(resize(x, (8, 8)), torch.nn.functional.avg_pool2d(x, 2))
