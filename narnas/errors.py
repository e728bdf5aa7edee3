"""The one base class of errors a user can fix (bad input, a missing file, a config that
does not fit). Every CLI prints such an error as one line and exits 2; anything else is a
bug and keeps its traceback."""
from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input, files or configuration, told in one line."""


class ConfigError(UserError, ValueError):
    """A config value of the wrong type or range, or an unknown key."""


class OutputError(UserError, OSError):
    """An output file or folder that cannot be written."""


class RegistryError(UserError, ValueError):
    """An unknown name, or a second registration under a taken name."""


class DamagedFileError(UserError, ValueError):
    """A journal or cache file with a damaged line (not a torn last line, which is repaired)."""
