"""InpaintConfig: every field is checked for type and range, with one clear line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neural_patch_synth import InpaintConfig, NPSError

BAD = [
    ("prior", ""), ("prior", 3), ("prior_only", "yes"), ("context", 0.5),
    ("context", float("nan")), ("coarse_size", 8), ("coarse_size", 64.0), ("coarse_size", True),
    ("iterations", ()), ("iterations", (10, -1)), ("iterations", (10, 2.5)), ("iterations", 10),
    ("lbfgs_history", 0), ("layers", ()), ("layers", ("conv3_1",)), ("layers", "relu3_1"),
    ("content_weight", -1.0), ("texture_weight", float("inf")), ("tv_weight", "1"),
    ("texture_colour", 1), ("patch_size", 0), ("patch_size", 4), ("known_stride", 0),
    ("max_known_patches", 0), ("max_known_patches", -5), ("match_every", 0),
    ("similarity", "cos"), ("search", "annoy"), ("pca_dim", 0), ("pca_dim", -1),
    ("pca_dim", 16.0), ("vgg_weights", ""), ("vgg_weights", 1), ("device", "gpu"),
    ("device", "cuda:x"), ("seed", -1), ("seed", 1.5), ("progress", None), ("detail", -0.1),
    ("detail", "0.15"), ("shifts", -1), ("shifts", 2.5), ("guide_sigma", 0.0),
    ("guide_sigma", -2.0), ("guide_sigma", True),
]


@pytest.mark.parametrize("name, value", BAD)
def test_bad_field_is_one_clear_line(name, value):
    with pytest.raises(NPSError) as err:
        InpaintConfig(**{name: value})
    message = str(err.value)
    assert message.startswith(f"{name} must be ") and "\n" not in message


@pytest.mark.parametrize("value", [0.0, -2.0, True, "2"])
def test_guide_sigma_message_states_the_range_it_checks(value):
    with pytest.raises(NPSError, match=r"^guide_sigma must be a finite number > 0\.0, got "):
        InpaintConfig(guide_sigma=value)


def test_good_values_are_accepted():
    config = InpaintConfig(prior=Path("w.pt"), context=1, iterations=[3, np.int64(2)],
                           layers=["relu1_1", "relu3_1"], pca_dim=None, seed=None,
                           device="cuda:1", vgg_weights=Path("v.pth"), max_known_patches=1)
    assert config.level_iterations(5) == 2
    assert InpaintConfig.from_options(iterations=4).iterations == (4,)
