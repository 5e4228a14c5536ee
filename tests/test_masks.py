import numpy as np

from neural_patch_synth.masks import Box, bounding_box, context_window, hole_groups


def test_bounding_box():
    m = np.zeros((10, 12), bool)
    m[2:5, 3:9] = True
    assert bounding_box(m) == Box(2, 5, 3, 9)


def test_context_window_square_centred_and_clamped():
    win = context_window(Box(100, 150, 100, 150), (512, 768), 2.0)
    assert (win.height, win.width) == (100, 100)
    assert (win.y0 + win.y1) // 2 == 125
    corner = context_window(Box(0, 50, 0, 50), (512, 768), 2.0)
    assert corner == Box(0, 100, 0, 100)
    big = context_window(Box(0, 400, 0, 400), (512, 768), 2.0)
    assert (big.height, big.width) == (512, 768)


def test_far_holes_are_separate_groups_near_holes_merge():
    m = np.zeros((512, 768), bool)
    m[100:150, 100:150] = True
    m[160:170, 160:170] = True  # inside the first hole's window: merged
    m[400:420, 600:620] = True  # far away: its own group
    groups = sorted(hole_groups(m, 2.0), key=lambda g: g.window.y0)
    assert len(groups) == 2
    assert groups[0].mask.sum() == 2500 + 100 and groups[1].mask.sum() == 400
    for g in groups:  # each group's mask is exactly the holes inside its window
        covered = np.zeros_like(m)
        covered[g.window.slices()] = g.mask
        assert not (covered & ~m).any()
    total = sum(int(g.mask.sum()) for g in groups)
    assert total == m.sum()
