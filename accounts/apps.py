from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _roles_after_migrate(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    # Django creates each app's permissions in its own post_migrate handler (connected before this one, as
    # django.contrib.auth comes first in INSTALLED_APPS); the last app's signal leaves every role complete.
    from accounts.services import roles_ensure

    roles_ensure(strict=False)


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts and roles")

    def ready(self) -> None:
        post_migrate.connect(_roles_after_migrate, dispatch_uid="accounts.roles_after_migrate")
