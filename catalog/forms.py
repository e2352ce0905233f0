from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from catalog.models import CategorySource, ImportKind


class ProductFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False)
    category = forms.IntegerField(label=_("Category"), required=False, widget=forms.HiddenInput)
    source = forms.ChoiceField(
        label=_("Source"), required=False, choices=[("", _("any source")), *CategorySource.choices]
    )
    verified = forms.ChoiceField(
        label=_("Verified"), required=False, choices=[("", _("any")), ("yes", _("verified")), ("no", _("unverified"))]
    )
    uncategorised = forms.BooleanField(label=_("Uncategorised only"), required=False)
    before = forms.IntegerField(required=False, widget=forms.HiddenInput)


class ImportForm(forms.Form):
    kind = forms.ChoiceField(label=_("What"), choices=ImportKind.choices, initial=ImportKind.PRODUCTS)
    file = forms.FileField(
        label=_("File"), help_text=_("CSV, TSV or JSONL for products; Shopify JSON, TSV or CSV for a taxonomy. UTF-8.")
    )
    dry_run = forms.BooleanField(label=_("Dry run: show what would change, write nothing"), required=False)
    keep_valid = forms.BooleanField(label=_("Import the valid rows even if some are invalid"), required=False)
    create_categories = forms.BooleanField(
        label=_("Create categories named by a path that does not exist yet"), required=False
    )
    language = forms.ChoiceField(
        label=_("Names are in"), choices=[("en", _("English")), ("zh-hans", _("Simplified Chinese"))], initial="en"
    )


class CategorySetForm(forms.Form):
    category = forms.IntegerField(label=_("Category"), required=False)
    version = forms.IntegerField(widget=forms.HiddenInput)
    verified = forms.BooleanField(label=_("Verified"), required=False, initial=True)
