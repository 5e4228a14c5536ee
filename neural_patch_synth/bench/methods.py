"""The compared methods: one function ``(image, mask) -> filled image`` each, in :data:`METHODS`.

``image`` is ``(H, W, 3)`` uint8 RGB whose hole pixels are zeroed, ``mask`` ``(H, W)`` bool
(True = hole); the result is ``(H, W, 3)`` uint8. A hole all around a known rectangle is an
outpainting case (:func:`known_box`): the nps methods extend the rectangle with ``outpaint``.
Adding a method is one decorated function; ``needs`` lists the modules it imports, and a method
whose modules are missing is skipped with a note instead of failing the run.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from neural_patch_synth.errors import NPSError

Fill = Callable[[np.ndarray, np.ndarray], np.ndarray]
OPENCV_RADIUS = 3
"""Neighbourhood radius of OpenCV's Telea and Navier-Stokes fills (the OpenCV sample's)."""


@dataclass(frozen=True)
class Method:
    name: str
    fn: Fill
    needs: tuple[str, ...] = ()
    check: Callable[[], str | None] | None = None
    """Returns why the method cannot run here (e.g. missing weights), or None."""
    gpu: bool = False
    """Runs on the bench's ``--device`` (its memory is then measured on the GPU)."""

    @property
    def description(self) -> str:
        """First paragraph of the function's docstring, on one line."""
        return " ".join((self.fn.__doc__ or "").strip().split("\n\n")[0].split())


METHODS: dict[str, Method] = {}


def method(name: str, needs: tuple[str, ...] = (), check: Callable[[], str | None] | None = None,
           gpu: bool = False) -> Callable[[Fill], Fill]:
    """Decorator registering ``fn`` as method ``name`` in :data:`METHODS`."""
    def register(fn: Fill) -> Fill:
        METHODS[name] = Method(name, fn, needs, check, gpu)
        return fn
    return register


def unavailable(m: Method) -> str | None:
    """Why method ``m`` cannot run in this installation, or None if it can."""
    for module in m.needs:
        try:
            importlib.import_module(module)
        except Exception as err:  # noqa: BLE001 - a broken install is as missing as an absent one
            return f"needs {module} ({type(err).__name__}: {err})"
    return m.check() if m.check else None


# --- nps ------------------------------------------------------------------------------------

_nps_options: dict[str, Any] = {}


def configure_nps(**options: Any) -> None:
    """Options every nps method starts from (device, weights, suite settings)."""
    _nps_options.clear()
    _nps_options.update(options, progress=False)
    _inpainter.cache_clear()


@functools.cache
def _inpainter(overrides: tuple[tuple[str, Any], ...]):
    from neural_patch_synth.api import Inpainter

    return Inpainter(None, **{**_nps_options, **dict(overrides)})


def nps_config(**overrides: Any):
    """The :class:`~neural_patch_synth.config.InpaintConfig` an nps method runs with."""
    return _inpainter(tuple(sorted(overrides.items()))).config


def _nps_check(**overrides: Any) -> Callable[[], str | None]:
    def check() -> str | None:
        try:
            nps_config(**overrides)  # builds the Inpainter: loads VGG and the prior once
        except NPSError as err:
            return str(err)
        return None
    return check


def known_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)`` of the known pixels when they form a rectangle and the hole is all
    around it (an outpainting case), else None."""
    known = ~np.asarray(mask, bool)
    if not known.any() or known.all():
        return None
    ys, xs = np.nonzero(known.any(axis=1))[0], np.nonzero(known.any(axis=0))[0]
    y0, y1, x0, x1 = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
    return (y0, y1, x0, x1) if known[y0:y1, x0:x1].all() else None


def _nps(image: np.ndarray, mask: np.ndarray, **overrides: Any) -> np.ndarray:
    """nps's fill; a hole all around a known rectangle is outpainted (step by step) from it."""
    inpainter = _inpainter(tuple(sorted(overrides.items())))
    box = known_box(mask)
    if box is None:
        return inpainter(image, mask)
    y0, y1, x0, x1 = box
    return inpainter.outpaint(image[y0:y1, x0:x1],
                              (x0, y0, mask.shape[1] - x1, mask.shape[0] - y1))


def content_prior() -> str:
    """What ``prior='auto'`` resolves to here: ``network`` (weights shipped) or ``smooth``."""
    from neural_patch_synth.prior import shipped_weights

    return "network" if shipped_weights() is not None else "smooth"


NPS = "neural_patch_synth.synthesis"


@method("nps", needs=(NPS,), check=_nps_check(), gpu=True)
def nps(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """nps with the suite's settings (prior auto: the content network when shipped, else
    smooth)."""
    return _nps(image, mask)


@method("nps-smooth-prior", needs=(NPS,), check=_nps_check(prior="smooth"), gpu=True)
def nps_smooth_prior(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """nps with the non-learned smooth prior instead of the content network."""
    return _nps(image, mask, prior="smooth")


@method("nps-poisson", needs=(NPS,), check=_nps_check(blend="poisson"), gpu=True)
def nps_poisson(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """nps with ``blend="poisson"``: the fill seamless-cloned into the photo (the default for
    outpainting)."""
    return _nps(image, mask, blend="poisson")


@method("nps-no-blend", needs=(NPS,), check=_nps_check(blend="none"), gpu=True)
def nps_no_blend(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """nps with ``blend="none"``: the fill pasted as it is (the default for inpainting)."""
    return _nps(image, mask, blend="none")


@method("nps-prior-only", needs=(NPS,), check=_nps_check(prior_only=True), gpu=True)
def nps_prior_only(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The content prior's fill alone, upsampled (no patch synthesis)."""
    return _nps(image, mask, prior_only=True)


@method("nps-optimise", needs=(NPS,), check=_nps_check(method="optimise"), gpu=True)
def nps_optimise(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The paper's method: L-BFGS pyramid of content + VGG-19 neural-patch texture + TV
    (``method="optimise"``, its defaults)."""
    return _nps(image, mask, method="optimise")


# --- baselines ------------------------------------------------------------------------------

def _patchmatch_check() -> str | None:
    import patchmatch

    return None if patchmatch.patchmatch_available else "the patchmatch native library failed"


@method("patchmatch", needs=("patchmatch",), check=_patchmatch_check)
def patchmatch_fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """PatchMatch (pypatchmatch defaults: patch radius 15, i.e. 31×31 patches), seed 0."""
    import patchmatch

    patchmatch.set_random_seed(0)
    return patchmatch.inpaint(image, mask)


@method("mirror")
def mirror(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mirror padding of the known rectangle (``np.pad(mode="reflect")``; outpainting cases
    only)."""
    box = known_box(mask)
    if box is None:
        raise ValueError("mirror padding needs a hole all around a known rectangle")
    y0, y1, x0, x1 = box
    h, w = mask.shape
    return np.pad(image[y0:y1, x0:x1], ((y0, h - y1), (x0, w - x1), (0, 0)), mode="reflect")


@method("telea", needs=("cv2",))
def telea(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """OpenCV fast-marching fill (Telea 2004), radius 3."""
    import cv2

    return cv2.inpaint(image, mask.astype(np.uint8), OPENCV_RADIUS, cv2.INPAINT_TELEA)


@method("ns", needs=("cv2",))
def navier_stokes(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """OpenCV Navier-Stokes fill (Bertalmio et al. 2001), radius 3."""
    import cv2

    return cv2.inpaint(image, mask.astype(np.uint8), OPENCV_RADIUS, cv2.INPAINT_NS)


@method("biharmonic", needs=("skimage.restoration",))
def biharmonic(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """scikit-image biharmonic fill (smooth, no texture)."""
    from skimage.restoration import inpaint_biharmonic

    out = inpaint_biharmonic(image, mask, channel_axis=-1)
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)
