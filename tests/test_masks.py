import numpy as np

from neural_patch_synth.bench.groups import speck_mask
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


def reference_groups(mask: np.ndarray, context: float, min_side: int) -> list[tuple]:
    """Brute force: windows by the formula, every overlapping pair merged each round, until
    no window overlaps another group's box. ``(window, sorted hole labels)`` per group."""
    from scipy import ndimage

    def window(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        side = max(min_side, int(round(context * max(box[1] - box[0], box[3] - box[2]))))
        out = []
        for lo, hi, limit in ((box[0], box[1], mask.shape[0]), (box[2], box[3], mask.shape[1])):
            size = min(max(side, hi - lo), limit)
            start = min(max((lo + hi - size) // 2, 0), limit - size)
            out += [start, start + size]
        return tuple(out)

    def overlap(a: tuple, b: tuple) -> bool:
        return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]

    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    groups = [([i + 1], (s[0].start, s[0].stop, s[1].start, s[1].stop))
              for i, s in enumerate(ndimage.find_objects(labels))]
    def root(parent: list[int], i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    while True:
        parent = list(range(len(groups)))
        for i, (_, box_i) in enumerate(groups):
            for j, (_, box_j) in enumerate(groups):
                if i != j and overlap(window(box_i), box_j):
                    parent[root(parent, i)] = root(parent, j)
        if all(parent[i] == i for i in range(len(groups))):
            return [(window(box), sorted(members)) for members, box in groups]
        merged: dict[int, tuple[list[int], tuple]] = {}
        for i, (members, box) in enumerate(groups):
            old = merged.get(root(parent, i))
            merged[root(parent, i)] = (members, box) if old is None else (
                old[0] + members, (min(old[1][0], box[0]), max(old[1][1], box[1]),
                                   min(old[1][2], box[2]), max(old[1][3], box[3])))
        groups = sorted(merged.values(), key=lambda g: min(g[0]))


def test_groups_equal_brute_force_reference():
    from scipy import ndimage

    rng = np.random.default_rng(0)
    for _ in range(200):
        shape = tuple(int(v) for v in rng.integers(40, 300, 2))
        mask = speck_mask(rng, shape, int(rng.integers(1, 50)), int(rng.integers(1, 30)))
        context, min_side = float(rng.choice([1.0, 1.5, 2.0, 3.0])), int(rng.choice([0, 16, 32]))
        labels = ndimage.label(mask, structure=np.ones((3, 3), bool))[0]
        got = []
        for g in hole_groups(mask, context, min_side):
            w = g.window
            got.append(((w.y0, w.y1, w.x0, w.x1),
                        sorted(set(np.unique(labels[w.slices()][g.mask]).tolist()))))
            assert (labels[w.slices()][g.mask] > 0).all()
        assert got == reference_groups(mask, context, min_side)
        assert sum(int(g.mask.sum()) for g in hole_groups(mask, context, min_side)) == mask.sum()


def test_thousands_of_specks_group_quickly():
    """4,000 dust specks: minutes with pairwise merging, well under a second now (a bound
    far above that, so a loaded machine cannot fail it)."""
    import time

    mask = speck_mask(np.random.default_rng(1), (2000, 3000), 4000, 3)
    start = time.process_time()
    groups = hole_groups(mask, 2.0)
    assert time.process_time() - start < 15.0
    assert sum(int(g.mask.sum()) for g in groups) == mask.sum()
    assert len(groups) > 1000
