from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        from django.contrib.auth.models import User
        from django.db.models.signals import post_save, pre_save

        from accounts import signals

        pre_save.connect(signals.remember_previous, sender=User, dispatch_uid="accounts.prev")
        post_save.connect(signals.notify_changes, sender=User, dispatch_uid="accounts.notify")
