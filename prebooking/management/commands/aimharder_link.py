"""Link a user's AimHarder account from a script: the password is read from stdin."""

from __future__ import annotations

import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from prebooking.aimharder import services as aimharder_services
from prebooking.providers.aimharder.client import AimHarderError


class Command(BaseCommand):
    help = (
        "Link USER's AimHarder account (checked by logging in); the password is read from the "
        "first line of stdin, never from the command line. Prints the account id and boxes."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--user", required=True, help="our username")
        parser.add_argument("--email", required=True, help="the AimHarder e-mail")

    def handle(self, *args, user: str, email: str, **options) -> None:
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"No user {user!r}.")
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError("No password on stdin.")
        try:
            account = aimharder_services.link_account(owner, email, password)
        except AimHarderError as exc:
            raise CommandError(exc.reason) from None
        boxes = ", ".join(f"{box.slug} ({box.boid})" for box in account.boxes.all())
        self.stdout.write(f"account {account.pk} linked: {boxes}")
