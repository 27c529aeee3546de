"""Exceptions a job may raise to steer the jobs layer."""


class PermanentError(Exception):
    """Raise from a job to mark it dead at once: retrying cannot help (bad data, a refusal)."""


class JobNotRegistered(LookupError):
    """A job name that names no ``@task`` of the jobs backend."""


class WorkerDied(Exception):
    """What a crashed attempt's error is (TaskResult.errors): its worker stopped mid-attempt."""
