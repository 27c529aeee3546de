"""The jobs layer over django-q2: job types with retry policies, an attempts log, dead letters.

from jobs import job, enqueue
"""

from jobs.registry import job


def enqueue(name: str, **kwargs: object):
    """Enqueue a job; see :func:`jobs.services.enqueue`."""
    from jobs.services import enqueue as _enqueue

    return _enqueue(name, **kwargs)


__all__ = ["enqueue", "job"]
