"""Contextual-attention generator (Yu et al. 2018) for the 128-px content prior.

Coarse to fine: a dilated encoder/decoder predicts a coarse fill; a refinement network sees the
composite and runs two branches at 32²: dilated convolutions, and contextual attention, which
matches every feature patch to the known feature patches by cosine similarity and copies a
softmax-weighted mix of them, so distant known content can be borrowed. ELU activations and no
normalisation layers: one image gives the same result alone or in a batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Predictor, conv, mean_fill


def _propagate(scores: torch.Tensor, size: tuple[int, int], k: int) -> torch.Tensor:
    """Attention propagation: add the scores of ``k`` neighbouring query/key pairs shifted
    together, left-right then up-down. ``scores``: ``(B, L, L)`` over ``L = h·w`` positions
    (row-major, ``size = (h, w)``). Returns ``(B, L, L)``."""
    b, n, _ = scores.shape
    h, w = size
    eye = torch.eye(k, dtype=scores.dtype, device=scores.device)[None, None]

    def along_rows(s: torch.Tensor) -> torch.Tensor:
        return F.conv2d(s[:, None], eye, padding=k // 2)[:, 0]

    def transpose(s: torch.Tensor, hh: int, ww: int) -> torch.Tensor:
        return s.reshape(b, hh, ww, hh, ww).permute(0, 2, 1, 4, 3).reshape(b, n, n)

    scores = along_rows(scores)
    return transpose(along_rows(transpose(scores, h, w)), w, h)


def contextual_attention(features: torch.Tensor, mask: torch.Tensor, scale: float = 10.0,
                         propagate: int = 3) -> torch.Tensor:
    """Rebuild ``features`` from known feature patches by cosine-similarity attention.

    ``features``: ``(B, C, H, W)``, ``H`` and ``W`` even; ``mask``: ``(B, 1, H, W)``, 1 = hole.
    Matching runs at half resolution on 3×3 patches; a key is usable when its whole window is
    known. Scores are propagated (``propagate``×``propagate``), softmaxed with ``scale`` over
    the usable keys, and the matching 4×4 full-resolution patches (stride 2) are pasted with
    those weights and overlap-averaged. Returns ``(B, C, H, W)``; zero where no key is usable.
    """
    b, c, h, w = features.shape
    small = F.avg_pool2d(features, 2)
    hole = F.max_pool2d(F.max_pool2d(mask, 2), 3, stride=1, padding=1)
    usable = (hole.flatten(1) < 0.5).to(features.dtype)  # (B, L)
    keys = F.unfold(small, 3, padding=1)  # (B, C·9, L)
    keys = keys / keys.norm(dim=1, keepdim=True).clamp_min(1e-4)
    scores = torch.bmm(keys.transpose(1, 2), keys)  # (B, L queries, L keys)
    if propagate > 1:
        scores = _propagate(scores, (h // 2, w // 2), propagate)
    scores = scores.masked_fill(usable[:, None, :] == 0, -1e4)
    attn = torch.softmax(scale * scores, dim=2) * usable[:, None, :]
    values = F.unfold(features, 4, padding=1, stride=2)  # (B, C·16, L)
    out = torch.bmm(values, attn.transpose(1, 2))  # (B, C·16, L)
    return F.fold(out, (h, w), 4, padding=1, stride=2) / 4.0


class AttentionNet(Predictor):
    """Coarse-to-fine generator with contextual attention over ``(B, 3, 128, 128)`` images.

    Coarse: stride-2 encoder to 32² (``2·width`` ch), dilated convolutions (2, 4, 8), a
    decoder to RGB at 64², bilinear ×2. Refine: the same encoder on the composite, then a
    dilated branch and an attention branch (:func:`contextual_attention` at 32²) joined and
    decoded to RGB at 128² (``width / 2`` ch at full size).
    Both stages end in a sigmoid.
    """

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        c1, c2 = width, 2 * width
        self.width = width

        def encoder() -> nn.Sequential:
            return nn.Sequential(conv(4, c1, 5, 2), conv(c1, c2, 3, 2), conv(c2, c2))

        def decoder(full: bool) -> nn.Sequential:
            last = ((nn.Upsample(scale_factor=2.0), conv(c1, c1 // 2),
                     nn.Conv2d(c1 // 2, 3, 3, padding=1)) if full else
                    (nn.Conv2d(c1, 3, 3, padding=1), nn.Upsample(scale_factor=2.0,
                                                                 mode="bilinear")))
            return nn.Sequential(nn.Upsample(scale_factor=2.0), conv(c2, c1), *last,
                                 nn.Sigmoid())

        def dilated() -> nn.Sequential:
            return nn.Sequential(conv(c2, c2, dilation=2), conv(c2, c2, dilation=4),
                                 conv(c2, c2, dilation=8), conv(c2, c2))

        self.coarse = nn.Sequential(encoder(), dilated(), decoder(full=False))
        self.refine_enc = encoder()
        self.refine_dilated = dilated()
        self.attn_in = conv(c2, c2)
        self.attn_out = nn.Sequential(conv(c2, c2), conv(c2, c2))
        self.merge = conv(2 * c2, c2)
        self.refine_dec = decoder(full=True)

    def stages(self, image: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """``image``: ``(B, 3, 128, 128)`` in ``[0, 1]`` (hole values ignored); ``mask``:
        ``(B, 1, 128, 128)``, 1 = hole. Returns ``[coarse, refined]``, each
        ``(B, 3, 128, 128)`` in ``[0, 1]``."""
        x = torch.cat([mean_fill(image, mask) * 2.0 - 1.0, mask], dim=1)
        coarse = self.coarse(x)
        known = image * (1.0 - mask)
        comp = torch.cat([(coarse * mask + known) * 2.0 - 1.0, mask], dim=1)
        feats = self.refine_enc(comp)
        small_mask = F.adaptive_max_pool2d(mask, feats.shape[-2:])
        borrowed = self.attn_out(contextual_attention(self.attn_in(feats), small_mask))
        y = self.merge(torch.cat([self.refine_dilated(feats), borrowed], dim=1))
        return [coarse, self.refine_dec(y)]
