from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from billing import signals
        from jobs import signals as job_signals

        job_signals.job_failed.connect(signals.mirror_failure, dispatch_uid="billing.failure")
        job_signals.job_action.connect(signals.mirror_action, dispatch_uid="billing.action")
