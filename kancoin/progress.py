"""A progress bar for long fits: step, PSNR and elapsed time on stderr."""

from __future__ import annotations

import sys

from tqdm import tqdm


class FitProgress:
    """Callable progress sink for `fit`; a percentage bar, since a run may be time-bounded."""

    def __init__(self, description: str, *, enabled: bool = True):
        self._bar = tqdm(
            total=1000,
            desc=description,
            unit="",
            bar_format="{desc} {bar} {percentage:3.0f}% [{elapsed}<{remaining}]{postfix}",
            disable=not enabled,
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=0.5,
        )
        self._shown = 0

    def __call__(self, step: int, done: float, psnr: float, elapsed: float) -> None:
        target = min(1000, int(done * 1000))
        if target > self._shown:
            self._bar.update(target - self._shown)
            self._shown = target
        self._bar.set_postfix_str(f"step {step}  psnr {psnr:.2f} dB", refresh=False)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> FitProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
