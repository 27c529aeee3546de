"""Exceptions a job may raise to steer the jobs layer."""


class PermanentError(Exception):
    """Raise from a job to mark it dead at once: retrying cannot help (bad data, a refusal)."""


class JobNotRegistered(LookupError):
    """A job name that no module declared with ``@job``."""
