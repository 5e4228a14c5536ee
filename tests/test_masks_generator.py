"""Irregular masks by hole-area category: ``random_mask`` and ``nps masks``."""

import numpy as np
import pytest

from neural_patch_synth.cli import main
from neural_patch_synth.errors import NPSError
from neural_patch_synth.io import load_mask
from neural_patch_synth.masks import MASK_CATEGORIES, random_mask


def touches_border(mask: np.ndarray) -> bool:
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


@pytest.mark.parametrize("category", range(6))
def test_every_category_in_range(category):
    lo, hi = MASK_CATEGORIES[category]
    for seed in range(5):
        for size in (128, 37):
            mask = random_mask(size, category, np.random.default_rng(seed))
            assert mask.shape == (size, size) and mask.dtype == bool
            assert lo <= mask.mean() <= hi, (seed, size, mask.mean())


def test_deterministic_per_seed():
    a = random_mask(128, 2, np.random.default_rng(7))
    assert np.array_equal(a, random_mask(128, 2, np.random.default_rng(7)))
    assert not np.array_equal(a, random_mask(128, 2, np.random.default_rng(8)))


def test_border_touches_the_edge():
    for seed in range(10):
        for category in (0, 5):
            mask = random_mask(64, category, np.random.default_rng(seed), border=True)
            assert touches_border(mask)
            lo, hi = MASK_CATEGORIES[category]
            assert lo <= mask.mean() <= hi


@pytest.mark.parametrize(("size", "category"), [(15, 0), (64, -1), (64, 6)])
def test_bad_arguments(size, category):
    with pytest.raises(NPSError):
        random_mask(size, category, np.random.default_rng(0))


def test_cli_writes_masks(tmp_path, capsys):
    out = tmp_path / "masks"
    assert main(["masks", "--category", "4", "--count", "3", "--size", "64", "-o", str(out),
                 "--seed", "3", "-q", "--border"]) == 0
    assert capsys.readouterr().err == ""
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [f"mask-04-{i:05d}.png" for i in range(3)]
    masks = [load_mask(f, (64, 64)) for f in files]
    for mask in masks:
        assert 0.4 <= mask.mean() <= 0.5 and touches_border(mask)
    assert not np.array_equal(masks[0], masks[1])
    again = tmp_path / "again"
    assert main(["masks", "--category", "4", "--count", "1", "--size", "64", "-o", str(again),
                 "--seed", "3", "-q", "--border"]) == 0
    assert np.array_equal(load_mask(again / "mask-04-00000.png"), masks[0])


def test_cli_refuses_to_overwrite(tmp_path, capsys):
    args = ["masks", "--category", "0", "--count", "2", "--size", "32", "-o", str(tmp_path)]
    assert main([*args, "-q"]) == 0
    before = (tmp_path / "mask-00-00001.png").read_bytes()
    assert main([*args, "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exist" in err
    assert (tmp_path / "mask-00-00001.png").read_bytes() == before


def exit_code(argv: list[str]) -> int:
    """``main``'s return value, or the code of the SystemExit argparse raises."""
    try:
        return main(argv)
    except SystemExit as done:
        return int(done.code)


@pytest.mark.parametrize("bad", [["--category", "6"], ["--category", "-1"], ["--count", "0"],
                                 ["--size", "8"], ["--count", "x"]])
def test_cli_bad_input(tmp_path, capsys, bad):
    opts = {"--category": "1", "--count": "2", "--size": "32", **dict([bad])}
    argv = ["masks", "-o", str(tmp_path / "out"), *(v for kv in opts.items() for v in kv)]
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err
    assert not (tmp_path / "out").exists()
