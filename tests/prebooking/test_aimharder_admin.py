"""Credentials key rotation, the staff views of linked accounts, the gym clocks on the dashboard."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.utils import timezone

from prebooking.models import AimHarderAccount, ClockEstimate
from prebooking.providers import credentials
from tests.prebooking.conftest import AIMHARDER_PASSWORD

pytestmark = pytest.mark.django_db


def test_rotation_re_encrypts_under_the_new_key_so_the_old_one_can_go(settings, linked_account):
    old = credentials.configured_keys()[0]
    new = Fernet.generate_key().decode()
    settings.PREBOOKING_CREDENTIALS_KEYS = [new, old]

    call_command("rotate_gym_credentials", stdout=io.StringIO())

    settings.PREBOOKING_CREDENTIALS_KEYS = [new]
    token = AimHarderAccount.objects.get().password_token
    assert credentials.decrypt(token) == AIMHARDER_PASSWORD


def test_a_token_no_key_opens_is_a_clear_error(settings, linked_account):
    settings.PREBOOKING_CREDENTIALS_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(credentials.CredentialsError, match="cannot be decrypted"):
        credentials.decrypt(AimHarderAccount.objects.get().password_token)


def test_staff_see_accounts_without_their_secret_and_the_gym_clocks(admin_client, linked_account):
    ClockEstimate.objects.create(
        host="https://crossfit-sur.aimharder.com",
        offset_ms=412.5,
        rtt_ms=38.0,
        shift_ms=431.5,
        uncertainty_ms=0.2,
        probes=44,
        measured_at=timezone.now(),
    )

    account_page = admin_client.get(
        f"/admin/prebooking/aimharderaccount/{linked_account.pk}/change/"
    ).content.decode()
    dashboard = admin_client.get("/admin/dashboard/").content.decode()

    assert "crossfit-sur" in account_page
    assert linked_account.password_token not in account_page
    assert AIMHARDER_PASSWORD not in account_page
    assert "https://crossfit-sur.aimharder.com" in dashboard and "412.5 ms" in dashboard
