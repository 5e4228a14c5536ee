"""``nps bench``: nps against PatchMatch and classical fills on Kodak and scene photos.

Modules: :mod:`.datasets` (cases), :mod:`.methods` (the method registry), :mod:`.metrics`
(hole L1/L2/PSNR/SSIM, sharpness ratio, patch SWD, saturation ratio), :mod:`.meter` (time and
peak memory), :mod:`.scaling` (the speed section), :mod:`.report` (results.json, summary.md,
plot), :mod:`.sheets` (kept fills, comparison pictures, look sheets), :mod:`.blind` (blind A/B
sheets and their scorer), :mod:`.paired` (two runs compared case by case), :mod:`.run` (the
command).
"""
