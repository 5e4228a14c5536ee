"""Patch voting: geometry, search, votes, best-patch copies, carried fields, seam gradients,
sharpening."""

import math

import pytest
import torch

from neural_patch_synth.config import InpaintConfig
from neural_patch_synth.poisson import forward_differences
from neural_patch_synth.voting import (
    SEAM_KEEP_STEP,
    Match,
    Voter,
    guide_trust,
    layout_guide,
    sharpen,
    source_gradients,
    texture_features,
    upsample_sources,
    vote_fill,
)
from tests.conftest import NO_CUDA
from tests.images import tiled

PERIOD = 8
CPU = torch.device("cpu")


def setup(device=CPU, h=64, w=160, box=(20, 44, 60, 92)):
    """A periodic image ``(3, h, w)`` in [0, 1], its hole and a voter over it, on ``device``."""
    img = (torch.from_numpy(tiled(h, w, PERIOD)).permute(2, 0, 1).float() / 255).to(device)
    hole = torch.zeros(h, w, dtype=torch.bool, device=device)
    hole[box[0]:box[1], box[2]:box[3]] = True
    voter = Voter(hole, 7, torch.ones(3), 3, generator(device), dims=147)
    return img, hole, voter


def generator(device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(0)


def perfect(voter: Voter, width: int) -> Match:
    """The field that copies every target from six periods to its left or right (clear of
    the hole for :func:`setup`'s hole)."""
    t = voter.targets
    x = t % width
    shift = torch.where(x >= 76, 6 * PERIOD, -6 * PERIOD)
    source = t + shift
    zero = torch.zeros(len(t), device=t.device)
    return Match(source, zero, zero)


def test_targets_and_sources_geometry(device):
    _, hole, voter = setup(device)
    h, w = hole.shape
    ys, xs = voter.targets // w, voter.targets % w
    assert ((ys >= 3) & (ys < h - 3) & (xs >= 3) & (xs < w - 3)).all()
    for flat, wanted in ((voter.targets, True), (voter.sources, False)):
        for y, x in zip((flat // w).tolist(), (flat % w).tolist(), strict=True):
            assert bool(hole[y - 3:y + 4, x - 3:x + 4].any()) == wanted
    # every patch centre inside the border margin is one or the other
    assert len(voter.targets) + len(voter.sources) == (h - 6) * (w - 6)


def test_search_finds_exact_copies_in_a_periodic_texture(device):
    img, hole, voter = setup(device)
    start = img.clone()
    start[:, hole] = 0.5  # nothing of the truth in the hole
    match = voter.search(img, 4)
    assert bool(voter.valid[match.source].all())
    assert (match.distance < 1e-6).float().mean() > 0.95
    # descriptors keep every dimension here, so the descriptor score equals the exact distance
    # (up to TF32 on CUDA: torch runs float32 convolutions with a 10-bit mantissa there)
    tf32 = {"atol": 1e-3} if device.type == "cpu" else {"atol": 1e-2, "rtol": 1e-2}
    assert torch.allclose(match.score, match.distance, **tf32)


def test_vote_and_best_patch_reproduce_the_truth_from_a_perfect_field(device):
    img, hole, voter = setup(device)
    blank = img.clone()
    blank[:, hole] = 0.0
    match = perfect(voter, hole.shape[1])
    voted = voter.vote(blank, match)
    assert torch.allclose(voted, img, atol=1e-6)
    copied, source = voter.best_patch(blank, match)
    assert torch.equal(copied, img)
    holes = hole.reshape(-1)
    assert bool((source[holes] >= 0).all()) and bool((source[~holes] == -1).all())
    assert not bool(holes[source[holes]].any())  # copied from known pixels only


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_cuda_votes_agree_with_the_cpu_and_repeat_bit_for_bit():
    """A random field: every hole pixel averages many different votes, which float atomics
    would add in a different order on every run."""
    img, hole, voter = setup()
    source = voter.random_sources(len(voter.targets))
    distance = voter.exact(img.reshape(3, -1), voter.targets, source)
    on_cpu = voter.vote(img, Match(source, distance, distance))
    cuda = torch.device("cuda")
    _, _, gpu = setup(cuda)
    field = Match(source.to(cuda), distance.to(cuda), distance.to(cuda))
    runs = [gpu.vote(img.to(cuda), field) for _ in range(3)]
    assert all(torch.equal(runs[0], run) for run in runs[1:])
    assert torch.allclose(runs[0].cpu(), on_cpu, atol=1e-5)
    assert not torch.allclose(on_cpu, img, atol=1e-2)  # the votes did change the hole


def test_search_shifts_copies_by_the_given_shifts(device):
    """Targets a shift lands on a source for copy by the best of those shifts; the others (none
    of whose shifts lands on a source) still get valid sources, from the free search."""
    img, _, voter = setup(device)
    shifts = torch.tensor([[0, 3], [0, -4 * PERIOD]])  # the first is never an exact copy
    match = voter.search_shifts(img, shifts, 2)
    assert bool(voter.valid[match.source].all())
    left = voter.targets - 4 * PERIOD
    lands = voter.valid[left]  # the targets at the hole's right end land in the hole
    assert bool(lands.any()) and bool((~lands).any())
    assert torch.equal(match.source[lands], left[lands])
    assert float(match.distance[lands].max()) < 1e-6


def test_search_layout_keeps_exact_shifts_and_takes_much_closer_free_matches(device):
    img, _, voter = setup(device)
    match = voter.search_layout(img, torch.tensor([[0, 3], [0, -4 * PERIOD]]), 4)
    left = voter.targets - 4 * PERIOD
    lands = voter.valid[left]
    assert torch.equal(match.source[lands], left[lands])
    # elsewhere only the inexact shift (0, 3) lands: the free search's exact copies win
    assert (match.distance[~lands] < 1e-6).float().mean() > 0.9


def test_locality_prefers_the_nearer_of_two_equal_sources(device):
    img, hole, _ = setup(device)
    near = Voter(hole, 7, torch.ones(3), 3, generator(device), dims=147, locality=10.0)
    match = near.search(img, 6)
    w = hole.shape[1]
    moved = (match.source % w - near.targets % w).abs() + (match.source // w
                                                             - near.targets // w).abs()
    exact = match.distance - near.penalty(match.source) < 1e-6
    assert exact.float().mean() > 0.9
    assert moved[exact].float().mean() <= 3 * PERIOD  # a few periods away, not far off


def test_guide_keeps_copies_where_its_colour_agrees(device):
    """A layout guide that splits the image in two halves: with it, hole patches copy from
    their own half; without it, from either."""
    img, hole, _ = setup(device)
    h, w = hole.shape
    guide = torch.zeros(3, h, w, device=device)
    guide[:, :, w // 2:] = 1.0
    halves = guide[0].reshape(-1)
    same = []
    for weight in (0.0, 100.0):
        voter = Voter(hole, 7, torch.ones(3), 3, generator(device), dims=147,
                      guide=guide.reshape(3, -1),
                      guide_weight=torch.full((h * w,), weight, device=device))
        match = voter.search(img, 6)
        exact = match.distance - voter.penalty(match.source) < 1e-6
        assert exact.float().mean() > 0.9
        same.append(float((halves[match.source] == halves[voter.targets]).float().mean()))
    assert same[1] > 0.98 and same[0] < 0.9


def test_layout_guide_keeps_the_layout_not_the_fine_texture():
    """A 256×512 window, dark left half and bright right half, with stripes 16 px apart: the
    guide is 64×128, keeps the halves' colours and drops the stripes."""
    image = torch.full((1, 3, 256, 512), 0.2)
    image[..., 256:] = 0.8
    image[..., ::16, :] += 0.15
    guide = layout_guide(image, 2.0)
    assert guide.shape == (1, 3, 64, 128)
    left, right = guide[..., 8:56, 8:56], guide[..., 8:56, 72:120]
    assert float(left.std()) < 0.005 and float(right.std()) < 0.005
    assert abs(float(left.mean()) - 0.2 - 0.15 / 16) < 0.005
    assert abs(float(right.mean()) - 0.8 - 0.15 / 16) < 0.005


def test_a_wider_layout_guide_keeps_broad_colours_not_a_small_patch():
    """A 12-px light square on a dark 128² window: σ 2 keeps it light, σ 8 spreads it into
    the dark around it."""
    image = torch.full((1, 3, 128, 128), 0.2)
    image[..., 58:70, 58:70] = 0.8
    narrow, wide = layout_guide(image, 2.0), layout_guide(image, 8.0)
    assert float(narrow[..., 64, 64].min()) > 0.7
    assert float(wide[..., 64, 64].max()) < 0.4
    assert float(wide[..., 8, 8].max()) == pytest.approx(0.2, abs=1e-3)


def test_guide_trust_falls_with_depth_in_the_hole():
    hole = torch.zeros(40, 100, dtype=torch.bool)
    hole[10:30, 20:80] = True
    trust = guide_trust(hole, 0.05).reshape(40, 100)
    assert bool((trust[~hole] == 1).all())
    assert float(trust[10, 50]) == pytest.approx(math.exp(-1 / 5))  # depth 1, reach 5 px
    assert float(trust[19, 50]) == pytest.approx(math.exp(-10 / 5))  # depth 10
    assert bool((trust[hole] < 1).all())


def test_upsample_sources_carries_a_coherent_field():
    coarse, fine = (16, 20), (32, 40)
    targets = torch.arange(5 * 20 + 6, 5 * 20 + 10)  # row 5, columns 6..9
    source = targets + 8  # eight columns to the right
    fine_targets = torch.tensor([10 * 40 + 12, 11 * 40 + 13, 10 * 40 + 19, 0])
    carried = upsample_sources(source, targets, coarse, fine_targets, fine)
    assert carried.tolist() == [10 * 40 + 28, 11 * 40 + 29, 10 * 40 + 35, -1]


def test_source_gradients_follow_the_sources(device):
    img, hole, voter = setup(device)
    h, w = hole.shape
    copied, source = voter.best_patch(img, perfect(voter, w))
    gx, gy = source_gradients(copied, source)
    fx, fy = forward_differences(img)
    # a copy from a periodic image asks for the image's own differences everywhere
    assert torch.allclose(gx, fx, atol=1e-6) and torch.allclose(gy, fy, atol=1e-6)


def test_source_gradients_spread_tone_steps_and_keep_edges():
    # pixels 2 and 3 were copied from pixels 0 and 5: the edge between them asks for the
    # difference beside pixel 2's source, I(1) - I(0) = 0.1, where it landed on a small step
    row = torch.tensor([[[0.2, 0.3, 0.4, 0.55, 0.9, 0.5]]])
    source = torch.tensor([-1, -1, 0, 5, -1, -1])
    gx, _ = source_gradients(row, source)
    assert gx[0, 0, 2].item() == pytest.approx(0.1)
    # a step far from the texture beside the sources is an object's edge: it is kept
    row[0, 0, 3] = 0.4 + 0.1 + 2 * SEAM_KEEP_STEP
    gx, _ = source_gradients(row, source)
    assert gx[0, 0, 2].item() == pytest.approx(0.1 + 2 * SEAM_KEEP_STEP)
    # edges with a known end keep the image's own differences
    known = [0, 1, 3, 4]
    assert torch.allclose(gx[0, 0, known], (row[0, 0, 1:] - row[0, 0, :-1])[known])


def test_texture_features():
    flat = torch.full((20, 20), 0.3)
    assert torch.equal(texture_features(flat, 2), torch.zeros(2, 20, 20))
    edge = torch.zeros(20, 20)
    edge[:, 10:] = 1.0
    feats = texture_features(edge, 2)
    assert feats[0, 5, 10] > 0.1 and feats[0, 5, 2] == 0  # horizontal change near the edge
    assert torch.equal(feats[1], torch.zeros(20, 20))     # no vertical change anywhere


def test_sharpen_raises_the_holes_fine_detail_and_nothing_else():
    gen = torch.Generator().manual_seed(0)
    x = (0.5 + 0.1 * torch.randn(1, 3, 40, 40, generator=gen)).clamp(0, 1)
    hole = torch.zeros(40, 40, dtype=torch.bool)
    hole[10:30, 10:30] = True
    out = sharpen(x, hole, 0.3)
    assert torch.equal(out[0][:, ~hole], x[0][:, ~hole])  # known pixels untouched

    def detail(img: torch.Tensor) -> float:  # RMS of the 4-neighbour Laplacian deep inside
        g = img[0].mean(0)
        lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
        return float(lap[13:25, 13:25].square().mean().sqrt())

    assert detail(out) > 1.2 * detail(x)
    lift = out - x  # one brightness change for all three channels where nothing clamps
    inside = (out > 0) & (out < 1)
    assert torch.allclose(lift[:, 0][inside.all(1)], lift[:, 2][inside.all(1)], atol=1e-6)
    # the gain fades in from the hole's border: smaller changes next to known pixels
    assert float(lift[0, :, 10, 12:28].abs().mean()) < float(lift[0, :, 20, 12:28].abs().mean())


def test_sharpen_leaves_a_flat_fill_alone():
    x = torch.full((1, 3, 30, 30), 0.4)
    hole = torch.zeros(30, 30, dtype=torch.bool)
    hole[5:25, 5:25] = True
    assert torch.allclose(sharpen(x, hole, 1.0), x, atol=1e-6)


def test_vote_fill_refuses_a_config_not_resolved_for_its_command():
    """Unresolved, the guide and the shifts would be silently off (None reads as 0)."""
    img, hole, _ = setup()
    image, hole = img[None], hole[None, None].float()
    with pytest.raises(ValueError, match="blend, gradient_weight, guide_weight, shifts unset"):
        vote_fill(image, hole, image, InpaintConfig(progress=False), generator(CPU))
    config = InpaintConfig(progress=False, em_iterations=(1,)).for_command("inpaint")
    out = vote_fill(image, hole, image, config, generator(CPU))
    assert out.shape == image.shape and torch.isfinite(out).all()
