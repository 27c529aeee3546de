from django.apps import AppConfig


class PrebookingConfig(AppConfig):
    name = "prebooking"
