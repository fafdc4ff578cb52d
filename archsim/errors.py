"""Errors archsim raises for bad input.

Every error names where the problem is (file and key path, op and node, ...) and what was
expected, in one line, so the CLI can print it without a traceback.
"""

from __future__ import annotations


class ArchsimError(Exception):
    """Base class of all errors caused by user input; the CLI prints these in one line."""


class SpecError(ArchsimError):
    """A spec value is out of range or inconsistent; `key` is the dotted path inside the spec."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key
        self.message = message

    def under(self, prefix: str) -> SpecError:
        """The same error with `prefix.` prepended to its key path."""
        key = f"{prefix}.{self.key}" if self.key else prefix
        return SpecError(key, self.message)


class ConfigError(ArchsimError):
    """A preset file cannot be read, has an unknown key, a wrong type or an out-of-range value."""


class DeviceModelError(ArchsimError):
    """A device model was asked for something outside what it models (e.g. an unfitted time)."""


class WorkloadError(ArchsimError):
    """A workload cannot be read or uses an unsupported operation."""


class MappingError(ArchsimError):
    """A workload does not fit on a chip."""
