"""Re-encrypt every linked gym account's password under the newest PREBOOKING_CREDENTIALS_KEY."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from prebooking.models import AimHarderAccount
from prebooking.providers import credentials


class Command(BaseCommand):
    help = (
        "Rotation, step 2 of 3: after putting a new key first in PREBOOKING_CREDENTIALS_KEY "
        "(old ones after it), re-encrypt every stored password with it; then drop the old keys."
    )

    def handle(self, *args, **options) -> None:
        rotated = failed = 0
        for account_id, token in AimHarderAccount.objects.values_list("pk", "password_token"):
            try:
                fresh = credentials.rotate(token)
            except credentials.CredentialsError:
                failed += 1
                self.stderr.write(f"account {account_id}: no configured key opens its password")
                continue
            # Conditional: an account re-linked meanwhile keeps its newer token.
            rotated += AimHarderAccount.objects.filter(pk=account_id, password_token=token).update(
                password_token=fresh
            )
        self.stdout.write(f"{rotated} re-encrypted with the newest key, {failed} unreadable.")
        if failed:
            raise CommandError(f"{failed} account(s) could not be decrypted: keep the old key.")
