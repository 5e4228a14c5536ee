"""``nps bench``: nps against PatchMatch and classical fills on Kodak and scene photos.

Modules: :mod:`.datasets` (cases), :mod:`.methods` (the method registry), :mod:`.metrics`
(hole L1/L2/PSNR/SSIM), :mod:`.meter` (time and peak memory), :mod:`.scaling` (the speed
section), :mod:`.report` (results.json, summary.md, pictures, plot), :mod:`.run` (the command).
"""
