"""The speed section: end-to-end time against image size.

Every size uses the same photo (a Kodak picture, centre square resized to the size) with a
centred square hole of a quarter of the area, as the paper's 512² demo.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .datasets import centre_hole, holed, square_crop
from .meter import measure
from .methods import Fill

PHOTO = "kodim23.png"
"""The photo every size is made from (parrots: smooth background and sharp detail)."""


def speed_case(root: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``size``² photo and its centred quarter-area square hole."""
    path = root / "kodak" / PHOTO
    if not path.exists():
        path = sorted((root / "kodak").glob("*.png"))[0]
    img = square_crop(Image.open(path).convert("RGB"), 512)
    if size != 512:
        img = img.resize((size, size), Image.LANCZOS)
    return np.asarray(img).copy(), centre_hole(size, size)


def end_to_end(fn: Fill, image: np.ndarray, mask: np.ndarray, cuda: bool) -> dict[str, Any]:
    """Time one method on one speed case."""
    given = holed(image, mask)
    _, seconds, peak = measure(lambda: fn(given, mask), cuda)
    return {"seconds": seconds, "peak_mb": peak}
