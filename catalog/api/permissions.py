from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request


class CatalogPermission(BasePermission):
    """Reads need the view permission, writes the change/add one; set `read_perm`/`write_perm` on the view."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        needed = view.read_perm if request.method in SAFE_METHODS else view.write_perm
        return bool(request.user.has_perm(needed))
