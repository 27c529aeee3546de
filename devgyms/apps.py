from django.apps import AppConfig


class DevGymsConfig(AppConfig):
    """The development gyms (the demo gym and the fake AimHarder): used only while DEBUG or
    their *_ENABLED settings are on; their tables belong to prebooking."""

    name = "devgyms"
    verbose_name = "Development gyms"
