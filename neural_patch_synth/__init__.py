"""neural_patch_synth: high-resolution inpainting by multi-scale neural patch synthesis."""

from .api import Inpainter, inpaint, outpaint
from .config import InpaintConfig
from .errors import NPSError

__all__ = ["InpaintConfig", "Inpainter", "NPSError", "inpaint", "outpaint"]
__version__ = "0.1.0"
