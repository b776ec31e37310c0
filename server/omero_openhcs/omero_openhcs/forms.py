"""The two forms: save a preset, launch one on a plate.

The forms only check shape (a name, some code, well names); whether the code
is a valid pipeline, and whether the user may run it on the plate, is the
execution server's call.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms

#: How large an uploaded pipeline file may be (pipeline code is a few KB).
MAX_CODE_BYTES = 256 * 1024
_WELL = re.compile(r"^[A-Za-z]{1,2}\d{1,3}$")


class PresetForm(forms.Form):
    """A preset's name, description and code (typed, or from a ``.py`` file)."""

    name = forms.SlugField(max_length=80)
    description = forms.CharField(max_length=500, required=False)
    code = forms.CharField(widget=forms.Textarea(attrs={"rows": 16}), required=False)
    upload = forms.FileField(required=False, label="or upload a .py file")

    def clean(self) -> dict[str, Any]:
        """Take the code from the file when one was uploaded."""
        data = super().clean()
        upload = data.get("upload")
        if upload is not None:
            if upload.size > MAX_CODE_BYTES:
                raise forms.ValidationError("the file is larger than 256 KiB")
            try:
                data["code"] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise forms.ValidationError("the file is not UTF-8 text") from None
        if not (data.get("code") or "").strip():
            raise forms.ValidationError("give the pipeline code or upload a file")
        return data


class ExecuteForm(forms.Form):
    """Which preset, and optionally which wells (all of them when empty)."""

    preset = forms.CharField(max_length=80)
    wells = forms.CharField(
        max_length=4000,
        required=False,
        help_text="e.g. A01 A02 B03; empty: the whole plate",
    )

    def clean_wells(self) -> list[str] | None:
        """Well names split on spaces or commas; None means every well."""
        names = [w for w in re.split(r"[\s,]+", self.cleaned_data["wells"]) if w]
        bad = [w for w in names if not _WELL.match(w)]
        if bad:
            raise forms.ValidationError(f"not a well name: {bad[0]}")
        return [w.upper() for w in names] or None
