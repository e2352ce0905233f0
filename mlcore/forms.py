from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from mlcore.models import TrainingMethod


class TrainingStartForm(forms.Form):
    method = forms.ChoiceField(label=_("Method"), choices=TrainingMethod.choices, initial=TrainingMethod.FULL)
    epochs = forms.FloatField(label=_("Epochs"), initial=3, min_value=0.1, max_value=100)
    learning_rate = forms.FloatField(label=_("Learning rate"), initial=5e-5, min_value=1e-7, max_value=0.5)
