"""Rate-distortion sweeps: kancoin's codecs against JPEG2000 and JPEG (`kancoin rd`).

codecs (the Codec interface) <- baselines (Pillow), neural (kancoin.encode/decode);
metrics (PSNR, MS-SSIM); sweep (jobs, workers, resume) -> results (rows, CompressAI curves)
-> report (JSON files, BD deltas via bd, the plot via plot).
"""

from kancoin.rd.report import format_summary
from kancoin.rd.sweep import SweepConfig, available_codecs, run_sweep

__all__ = ["SweepConfig", "available_codecs", "format_summary", "run_sweep"]
