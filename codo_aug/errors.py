"""The two kinds of failure codo reports: input the user can fix, and runtime failures."""


class CodoError(Exception):
    """Base of every error codo raises on purpose."""


class InputError(CodoError):
    """Bad input or configuration: a missing path, an unknown kind, an invalid option (CLI exit 2)."""


class RunError(CodoError):
    """A failure while working on good input: a full disk, a diverging loss (CLI exit 1)."""
