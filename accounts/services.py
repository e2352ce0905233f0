from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.db import transaction

from accounts.models import UserPreference
from accounts.roles import ROLE_PERMISSIONS, Role
from core.errors import ApplicationError


def roles_ensure(*, apps: Any = None, strict: bool = True) -> None:
    """Create the role groups with exactly their permissions (idempotent). Run after every migrate (post_migrate,
    see accounts/apps.py), so a new permission in accounts/roles.py needs no migration of its own. strict=False
    passes over permissions whose app has not been migrated yet: post_migrate comes once per app."""
    group_model = apps.get_model("auth", "Group") if apps else Group
    permission_model = apps.get_model("auth", "Permission") if apps else Permission
    for role, names in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role.value)
        permissions = []
        for name in names:
            app_label, codename = name.split(".")
            permission = permission_model.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is None:
                if strict:
                    raise RuntimeError(f"Permission {name} does not exist: run migrate first.")
                continue
            permissions.append(permission)
        group.permissions.set(permissions)


def user_role_assign(*, user: AbstractBaseUser, role: Role) -> None:
    with transaction.atomic():
        group = Group.objects.filter(name=role.value).first()
        if group is None:  # a database flushed after migrate (transactional tests, a restored dump)
            roles_ensure()
            group = Group.objects.get(name=role.value)
        user.groups.add(group)  # type: ignore[attr-defined]


def user_language_set(*, user: AbstractBaseUser, language: str) -> UserPreference:
    from django.conf import settings

    if language and language not in dict(settings.LANGUAGES):
        raise ApplicationError(f"Unknown language '{language}'.")
    preference, _ = UserPreference.objects.update_or_create(user=user, defaults={"language": language})
    return preference
