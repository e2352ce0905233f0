from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from mlcore.models import TRAINABLE_METHODS, TrainingMethod


def _base_models() -> list[tuple[str, str]]:
    from mlcore.services.training import base_model_choices

    return [(name, name) for name in base_model_choices()]


class TrainingStartForm(forms.Form):
    # Optional fields default as the service does (a client posting only method, epochs and rate keeps working).
    base_model = forms.ChoiceField(label=_("Base model"), choices=_base_models, initial="default", required=False)
    method = forms.ChoiceField(label=_("Method"), choices=TRAINABLE_METHODS, initial=TrainingMethod.FULL)
    lora_rank = forms.IntegerField(label=_("LoRA rank"), initial=16, min_value=1, max_value=256, required=False)
    epochs = forms.FloatField(label=_("Epochs"), initial=3, min_value=0.1, max_value=100)
    learning_rate = forms.FloatField(label=_("Learning rate"), initial=5e-5, min_value=1e-7, max_value=0.5)
    max_length = forms.IntegerField(label=_("Max tokens"), initial=64, min_value=8, max_value=512, required=False)
    warm_start = forms.TypedChoiceField(
        label=_("Warm start"),
        choices=[("auto", _("auto: from the active version")), ("off", _("off: from the base model"))],
        initial="auto",
        coerce=lambda value: value != "off",
        required=False,
        empty_value="",  # left out: the service warm-starts by default
    )


class RetrainingPolicyForm(forms.Form):
    after_labels = forms.IntegerField(label=_("After new verified labels"), min_value=0, max_value=1_000_000)
    daily_at = forms.TimeField(label=_("Daily at"), required=False, widget=forms.TimeInput(attrs={"type": "time"}))
    min_interval_minutes = forms.IntegerField(label=_("At least minutes apart"), min_value=0, max_value=100_000)
