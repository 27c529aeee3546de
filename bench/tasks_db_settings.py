"""Settings for bench/tasks_db.py: the project's, plus django-tasks-db as a second Tasks backend
("db") on the same PostgreSQL, the baseline our backend is compared with."""

from config.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks_db"]  # noqa: F405
TASKS = {
    **TASKS,  # noqa: F405
    "db": {"BACKEND": "django_tasks_db.backend.DatabaseBackend", "QUEUES": ["default"]},
}
