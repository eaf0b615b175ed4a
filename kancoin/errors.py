"""One exception type per failure family; the CLI alone maps them to exit codes."""

from __future__ import annotations


class KancoinError(Exception):
    """Base of every error kancoin raises on purpose (never a bug)."""

    exit_code = 1


class UsageError(KancoinError):
    """Options that contradict each other or make no sense for the input."""

    exit_code = 2


class InputError(KancoinError):
    """The input signal is missing, unreadable or of a kind we do not support."""

    exit_code = 3


class FormatError(KancoinError):
    """An .inr file is corrupt, truncated, of another version, or exceeds our limits."""

    exit_code = 4


class LimitError(FormatError):
    """A file asks for more than the configured limits allow (decompression-bomb guard)."""

    exit_code = 5


class BudgetError(LimitError):
    """Decoding a file would cost more work or memory than the decode budget allows."""

    exit_code = 5


class OutputError(KancoinError):
    """The output exists (and --force was not given) or cannot be written."""

    exit_code = 6


class RateError(KancoinError):
    """The requested rate cannot be met (e.g. the target is below the header's own size)."""

    exit_code = 7


class DeviceError(KancoinError):
    """The requested compute device is not available."""

    exit_code = 8


class PriorError(KancoinError):
    """A cohort prior is missing, is not the one a file was coded with, or is corrupt."""

    exit_code = 9
