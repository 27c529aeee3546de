"""Signals of the jobs layer, so apps can mirror job state without the layer knowing them.

- ``job_failed(job, error, dead)``: inside the transaction that records a failed attempt, or a
  crashed one (noticed when the job is next claimed, just before its next attempt starts).
- ``job_dead(job)``: after that transaction commits, when the job has no attempts left.
- ``job_action(job, action)``: inside the transaction of a staff action (replay, resolve,
  discard), so apps can mirror it.
"""

from django.dispatch import Signal

job_failed = Signal()
job_dead = Signal()
job_action = Signal()
