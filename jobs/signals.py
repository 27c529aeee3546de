"""Signals of the jobs layer.

- ``job_dead(job)``: after the transaction that made a job dead commits (alerts listen).
"""

from django.dispatch import Signal

job_dead = Signal()
