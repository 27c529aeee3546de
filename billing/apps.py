from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from billing.emails import context_defaults, dunning_open, invoice_unpaid
        from mail.services import add_context_defaults, still_relevant_when

        add_context_defaults(context_defaults)

        # A reminder about a payment that came in meanwhile is skipped at send time.
        still_relevant_when("payment_failed", invoice_unpaid)
        still_relevant_when("dunning_reminder", dunning_open)
        still_relevant_when("dunning_final", dunning_open)
