"""Progress on stderr: a bar on a terminal, occasional plain lines in a log.

The bar names the phase (fit, fine-tuning, bit allocation, verification) and shows the
whole signal's PSNR at the fit's last checkpoint, not a training batch's. Once a fit has
run a little, the total time is estimated; a long one is announced with a faster way.
"""

from __future__ import annotations

import math
import sys
import time

from tqdm import tqdm

ESTIMATE_AFTER_SECONDS = 5.0  # enough steps to extrapolate from
ESTIMATE_AFTER_SHARE = 0.01
NOTE_ABOVE_SECONDS = 60.0  # estimates shorter than this are not worth a line
LONG_FIT_SECONDS = 600.0  # above this the estimate is a warning naming a faster way
LOG_EVERY_SHARE = 0.1  # log mode: a line every 10 % ...
LOG_EVERY_SECONDS = 60.0  # ... or every minute, whichever comes first


def faster_hint(preset: str, *, steps=None, time_budget=None) -> str:
    """What would make a long fit shorter, for the warning."""
    from kancoin.presets import PRESETS

    if steps is None and time_budget is None and preset != "fast":
        ratio = PRESETS[preset].steps / PRESETS["fast"].steps
        return f"--preset fast fits about {ratio:g}x fewer steps; --time-budget S bounds it"
    return "fewer --steps, or --time-budget S, bounds it"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class _Bar:
    """A context manager around an optional tqdm bar (`_bar`: None when disabled)."""

    _bar = None
    _stream = None

    def _open(self, total: int, description: str):
        """The bar on `_stream`: a share of `total` thousandths, time left, a postfix."""
        return tqdm(
            total=total,
            desc=description,
            unit="",
            bar_format="{desc} {bar} {percentage:3.0f}% [{elapsed}<{remaining}]{postfix}",
            file=self._stream,
            dynamic_ncols=True,
            mininterval=0.5,
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FitProgress(_Bar):
    """Callable progress sink for `kancoin.encode` (step, done, psnr, elapsed), with
    `phase(name)` for the codec's phases."""

    def __init__(
        self,
        description: str,
        *,
        enabled: bool = True,
        hint: str | None = None,
        stream=None,
        interactive: bool | None = None,
    ):
        self._stream = stream or sys.stderr
        self._enabled = enabled
        if interactive is None:
            interactive = bool(getattr(self._stream, "isatty", lambda: False)())
        self._interactive = interactive
        self._description = description
        self._hint = hint
        self._phase_name = "fit"
        self._estimated = False
        self._started = time.perf_counter()
        self._logged_at, self._logged_share = -math.inf, -1.0
        self._bar = None
        if enabled and interactive:
            self._bar = self._open(1000, self._label())
        self._shown = 0

    def _label(self) -> str:
        return f"{self._description} [{self._phase_name}]"

    def phase(self, name: str) -> None:
        if name == self._phase_name:
            return
        self._phase_name = name
        if not self._enabled:
            return
        if self._bar is not None:
            self._bar.set_description_str(self._label(), refresh=True)
        else:
            self._line(f"{self._description}: {name}")

    def __call__(self, step: int, done: float, psnr: float, elapsed: float) -> None:
        if not self._enabled:
            return
        target = min(1000, int(done * 1000))
        quality = "psnr -" if not math.isfinite(psnr) else f"psnr {psnr:.2f} dB"
        if self._bar is not None:
            if target > self._shown:
                self._bar.update(target - self._shown)
                self._shown = target
            self._bar.set_postfix_str(f"step {step}  {quality}", refresh=False)
        else:
            now = time.perf_counter()
            if done - self._logged_share >= LOG_EVERY_SHARE or now - self._logged_at >= (
                LOG_EVERY_SECONDS
            ):
                self._logged_at, self._logged_share = now, done
                self._line(
                    f"{self._description}: {self._phase_name} {100 * done:3.0f}%  step {step}  "
                    f"{quality}  {now - self._started:.0f} s"
                )
        self._maybe_estimate(done)

    def _maybe_estimate(self, done: float) -> None:
        if self._estimated or done <= 0:
            return
        elapsed = time.perf_counter() - self._started
        if elapsed < ESTIMATE_AFTER_SECONDS or done < ESTIMATE_AFTER_SHARE:
            return
        self._estimated = True
        total = elapsed / done
        if total < NOTE_ABOVE_SECONDS:
            return
        if total >= LONG_FIT_SECONDS:
            hint = f": {self._hint}" if self._hint else ""
            self._line(
                f"kancoin: warning: {self._description} will take about {_duration(total)} "
                f"to fit{hint}"
            )
        else:
            self._line(f"{self._description}: about {_duration(total)} to fit")

    def _line(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self._stream)
        else:
            print(text, file=self._stream, flush=True)


class BatchProgress(_Bar):
    """One bar over a batch of files; within a file (one worker) it moves with the fit."""

    def __init__(self, files: int, *, enabled: bool = True, stream=None):
        self._stream = stream or sys.stderr
        self._files = files
        self._done = 0
        self._failed = 0
        self._enabled = enabled
        interactive = bool(getattr(self._stream, "isatty", lambda: False)())
        self._bar = None
        if enabled and interactive:
            self._bar = self._open(files * 1000, f"{files} files")
        self._shown = 0
        self._name = ""

    def start_file(self, name: str) -> None:
        self._name = name
        if self._bar is not None:
            self._bar.set_postfix_str(f"{name}", refresh=False)

    def file_progress(self, step: int, done: float, psnr: float, elapsed: float) -> None:
        self._move(self._done * 1000 + min(1000, int(done * 1000)))

    def file_done(self, failed: bool) -> None:
        self._done += 1
        self._failed += failed
        self._move(self._done * 1000)
        if self._bar is None and self._enabled:
            print(
                f"batch: {self._done}/{self._files} files"
                + (f" ({self._failed} failed)" if self._failed else ""),
                file=self._stream,
                flush=True,
            )

    def _move(self, position: int) -> None:
        if self._bar is not None and position > self._shown:
            self._bar.update(position - self._shown)
            self._shown = position
