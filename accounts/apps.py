from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        from django.contrib.auth.models import User
        from django.contrib.auth.signals import user_login_failed
        from django.db.models.signals import post_save, pre_save

        from accounts import ceiling, signals

        user_login_failed.connect(ceiling.count_failure, dispatch_uid="accounts.ceiling")
        pre_save.connect(signals.remember_previous, sender=User, dispatch_uid="accounts.prev")
        post_save.connect(signals.notify_changes, sender=User, dispatch_uid="accounts.notify")
