from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from billing.emails import dunning_open, invoice_unpaid
        from mail.services import still_relevant_when

        # A reminder about a payment that came in meanwhile is skipped at send time.
        still_relevant_when("payment_failed", invoice_unpaid)
        still_relevant_when("dunning_reminder", dunning_open)
        still_relevant_when("dunning_final", dunning_open)
