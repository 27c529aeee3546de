"""Periodic tasks: ``@task(every_minutes=N)``, kept as django-q2 schedules after each migrate.

django-q2's Schedule model stays the way periodic work runs (read-only in the admin): each
schedule names a task by module path, and when it is due the cluster's scheduler hands it to
our broker, which enqueues that task (jobs.broker.JobsBroker.enqueue). A periodic run therefore
gets the same retries, attempts log and dead letter as any other job, and one run is one job
however many clusters' schedulers see it (the scheduled instant is part of the job's unique
key).
"""

from __future__ import annotations

import sys

from django.apps import apps

from jobs.backend import JobTask


def declared_tasks() -> list[JobTask]:
    """The @tasks of every installed app's ``tasks`` module (imported at start-up)."""
    found = {}
    for config in apps.get_app_configs():
        module = sys.modules.get(f"{config.name}.tasks")
        for value in vars(module).values() if module else ():
            if isinstance(value, JobTask) and value.func.__module__ == module.__name__:
                found[value.module_path] = value
    return sorted(found.values(), key=lambda task: task.module_path)


def ensure_schedules(**kwargs: object) -> None:
    """Create or update the django-q2 schedule of every periodic task (post_migrate)."""
    from django_q.models import Schedule

    periodic = [task for task in declared_tasks() if task.every_minutes]
    names = [f"periodic:{task.module_path}" for task in periodic]
    # A periodic task removed from the code takes its schedule with it.
    Schedule.objects.filter(name__startswith="periodic:").exclude(name__in=names).delete()
    for name, task in zip(names, periodic, strict=True):
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": task.module_path,
                "args": None,
                "schedule_type": Schedule.MINUTES,
                "minutes": task.every_minutes,
                "repeats": -1,
                "intended_date_kwarg": "scheduled_for",
                # The clusters of the task's queue run its schedule.
                "cluster": task.queue_name,
            },
        )
