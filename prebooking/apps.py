from django.apps import AppConfig


class PrebookingConfig(AppConfig):
    name = "prebooking"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from core.dbtypes import register_sane_timestamps
        from prebooking import checks  # noqa: F401 - registers the system checks

        # Absurd class times are where such rows came from (core.dbtypes says why).
        connection_created.connect(register_sane_timestamps, dispatch_uid="core.dbtypes")
