import os
from importlib import import_module

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs and dead letters"

    def ready(self) -> None:
        # Every app declares its job types in tasks.py; workers must know them all.
        autodiscover_modules("tasks")
        # Extra job modules (tests start real workers that must know their job types).
        for module in filter(None, os.environ.get("JOBS_EXTRA_MODULES", "").split(",")):
            import_module(module.strip())
        from django.db.models.signals import post_migrate

        from jobs import alerts  # noqa: F401 - connects the dead-job alert
        from jobs.periodic import ensure_schedules

        post_migrate.connect(ensure_schedules, sender=self)
