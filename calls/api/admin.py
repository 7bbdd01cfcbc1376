"""API keys in the admin: an administrator creates one (its key shown once, on the page that
answers the form), sees when it was last used, and revokes it."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from calls.models import ApiKey
from calls.models.api import SCOPE_CHOICES


class ApiKeyForm(forms.ModelForm[ApiKey]):
    scopes = forms.MultipleChoiceField(
        choices=SCOPE_CHOICES, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "expires_at"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[ApiKey]):
    form = ApiKeyForm
    list_display = ["name", "shown_prefix", "scope_list", "expires_at", "last_used_at", "state"]
    readonly_fields = ["shown_prefix", "last_used_at", "revoked_at", "created_by", "created_at"]
    search_fields = ["name", "prefix"]
    actions = ["revoke"]

    @admin.display(description="Key starts")
    def shown_prefix(self, key: ApiKey) -> str:
        return f"obd_{key.prefix}_…" if key.prefix else "—"

    @admin.display(description="Scopes")
    def scope_list(self, key: ApiKey) -> str:
        return ", ".join(key.scopes) or "—"

    @admin.display(description="State")
    def state(self, key: ApiKey) -> str:
        if key.revoked_at:
            return "revoked"
        return "live" if key.is_usable(timezone.now()) else "expired"

    def save_model(
        self, request: HttpRequest, obj: ApiKey, form: forms.ModelForm[ApiKey], change: bool
    ) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]  # the admin lets only staff in
            obj.issue()
        super().save_model(request, obj, form, change)

    def response_add(
        self, request: HttpRequest, obj: ApiKey, post_url_continue: Any = None
    ) -> HttpResponse:
        """The key, this once, on the page answering the form (never in a message or a URL)."""
        context = {
            **self.admin_site.each_context(request),
            "api_key": obj,
            "secret": obj.issued_key,
        }
        context["title"] = "API key created"
        response = render(request, "admin/calls/apikey/issued.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke the selected keys (refused from their next request)")
    def revoke(self, request: HttpRequest, keys: QuerySet[ApiKey]) -> None:
        revoked = keys.filter(revoked_at=None).update(revoked_at=timezone.now())
        self.message_user(request, f"{revoked} key(s) revoked.", messages.SUCCESS)
