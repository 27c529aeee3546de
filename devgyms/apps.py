from django.apps import AppConfig


class DevGymsConfig(AppConfig):
    """The development gyms (the demo gym and the fake AimHarder): used only while DEBUG or
    their *_ENABLED settings are on; their tables belong to prebooking."""

    name = "devgyms"
    verbose_name = "Development gyms"

    def ready(self) -> None:
        from devgyms.demo_gym import register_prebooked_class
        from prebooking.signals import prebooking_created

        prebooking_created.connect(register_prebooked_class, dispatch_uid="devgyms.demo_gym")
