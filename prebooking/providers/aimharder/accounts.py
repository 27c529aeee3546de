"""The decrypted credentials of a linked AimHarder account, for the provider to log in with.

Apart from the service layer on purpose: the provider registry hands this lookup to the
provider, which then needs nothing above it (prebooking.services imports the registry).
"""

from __future__ import annotations

from django.views.decorators.debug import sensitive_variables

from prebooking.models import AimHarderAccount
from prebooking.providers import credentials


@sensitive_variables("password")
def account_credentials(account_id: int) -> tuple[str, str, str]:
    """(e-mail, password, fingerprint) of a linked account, decrypted."""
    account = AimHarderAccount.objects.get(pk=account_id)
    password = credentials.decrypt(account.password_token)
    return account.email, password, account.fingerprint
