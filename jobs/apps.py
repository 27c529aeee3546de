import os
from importlib import import_module

from django.apps import AppConfig
from django.conf import settings
from django.utils.module_loading import autodiscover_modules


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs and dead letters"

    def ready(self) -> None:
        # Every app declares its tasks (@task) in tasks.py; workers must know them all.
        autodiscover_modules("tasks")
        # Extra task modules (tests start real workers that must know their tasks).
        for module in settings.JOBS_EXTRA_MODULES:
            import_module(module)
        from django.db.models.signals import post_migrate

        from jobs import alerts  # noqa: F401 - connects the dead-job alert
        from jobs.periodic import ensure_schedules

        post_migrate.connect(ensure_schedules, sender=self)
        if os.environ.get("JOBS_WORKER_QUEUE"):
            from django.db.backends.signals import connection_created

            connection_created.connect(name_worker_connection)


def name_worker_connection(sender: object, connection: object, **kwargs: object) -> None:
    """In a jobs_worker process, name its database sessions "jobs <queue> <pid>": what holds a
    lock or runs a query is then visible in pg_stat_activity (forked workers connect anew)."""
    name = f"jobs {os.environ['JOBS_WORKER_QUEUE']} {os.getpid()}"[:63]
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('application_name', %s, false)", [name])
