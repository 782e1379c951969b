"""C3: `python manage.py issue_token NAME` prints only the API token of the staff or partner account NAME."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from accounts.models import User

TOKEN_ROLES = {User.Role.PARTNER, User.Role.CLERK, User.Role.REVIEWER, User.Role.ADMIN}


class Command(BaseCommand):
    help = "Print the API token of a staff or partner account, creating a partner account NAME if none exists."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="username of the staff or partner account")

    def handle(self, *args, name: str, **options) -> None:
        name = name.strip()
        if not name or len(name) > 150:
            raise CommandError("NAME must be 1 to 150 characters.")
        with transaction.atomic():
            user, created = User.objects.get_or_create(
                username=name, defaults={"role": User.Role.PARTNER, "is_active": True}
            )
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
            elif user.role not in TOKEN_ROLES and not user.is_staff:
                # A citizen's login never gets a partner token by accident.
                raise CommandError(f"{name} is a citizen account; tokens are for staff and partner accounts.")
            token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)
