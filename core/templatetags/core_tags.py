"""Template filters every app's job pages share."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def eta(seconds: int | None) -> str:
    """A job's time left, as a person reads it: "40 s", "12 min", "2 h 5 min"."""
    if seconds is None:
        return ""
    if seconds < 60:
        return _("%(n)s s") % {"n": seconds}
    minutes = round(seconds / 60)
    if minutes < 60:
        return _("%(n)s min") % {"n": minutes}
    return _("%(h)s h %(m)s min") % {"h": minutes // 60, "m": minutes % 60}
