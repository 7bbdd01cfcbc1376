"""The callback endpoints in the admin: register one (its secret shown once), rotate its secret
with an overlap, turn it back on, read its delivery log (each attempt's code and time) and
replay deliveries."""

from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html

from calls.models import CallbackAttempt, CallbackDelivery, CallbackEndpoint
from calls.models.callbacks import EventType


class CallbackEndpointForm(forms.ModelForm[CallbackEndpoint]):
    event_types = forms.MultipleChoiceField(
        choices=EventType.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = CallbackEndpoint
        fields = ["url", "description", "api_key", "event_types", "enabled"]


def _show_secret(
    request: HttpRequest, endpoint: CallbackEndpoint, secret: str, *, overlap: bool
) -> HttpResponse:
    """The one page that shows a secret: the answer to the POST that made it, never stored in
    a message (a cookie) or a URL."""
    context = {"endpoint": endpoint, "secret": secret, "overlap": overlap, "title": "Secret"}
    response = render(request, "admin/calls/callbackendpoint/secret.html", context)
    add_never_cache_headers(response)
    return response


@admin.register(CallbackEndpoint)
class CallbackEndpointAdmin(admin.ModelAdmin[CallbackEndpoint]):
    form = CallbackEndpointForm
    list_display = ["url", "description", "api_key", "enabled", "failing_since", "delivery_log"]
    list_filter = ["enabled"]
    list_select_related = ["api_key"]
    readonly_fields = ["disabled_at", "disabled_reason", "failing_since", "created_at"]
    actions = ["rotate_secret", "turn_on", "replay_given_up"]

    def save_model(
        self,
        request: HttpRequest,
        obj: CallbackEndpoint,
        form: forms.ModelForm[CallbackEndpoint],
        change: bool,
    ) -> None:
        if not change:
            obj.set_new_secret()
        super().save_model(request, obj, form, change)

    def response_add(
        self, request: HttpRequest, obj: CallbackEndpoint, post_url_continue: str | None = None
    ) -> HttpResponse:
        return _show_secret(request, obj, obj.fresh_secret, overlap=False)

    @admin.display(description="Delivery log")
    def delivery_log(self, endpoint: CallbackEndpoint) -> str:
        url = reverse("admin:calls_callbackdelivery_changelist")
        return format_html('<a href="{}?endpoint__id__exact={}">deliveries</a>', url, endpoint.pk)

    @admin.action(description="Rotate the secret (the old one signs too for a while)")
    def rotate_secret(
        self, request: HttpRequest, queryset: QuerySet[CallbackEndpoint]
    ) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Rotate one endpoint at a time.", messages.WARNING)
            return None
        endpoint = queryset.get()
        overlap = timedelta(hours=settings.OBD_CALLBACK_ROTATION_OVERLAP_HOURS)
        secret = endpoint.rotate_secret(overlap)
        return _show_secret(request, endpoint, secret, overlap=True)

    @admin.action(description="Turn on again (after it was disabled)")
    def turn_on(self, request: HttpRequest, queryset: QuerySet[CallbackEndpoint]) -> None:
        for endpoint in queryset:
            endpoint.enable()
        self.message_user(request, f"{queryset.count()} endpoint(s) on.", messages.SUCCESS)

    @admin.action(description="Replay the deliveries given up")
    def replay_given_up(self, request: HttpRequest, queryset: QuerySet[CallbackEndpoint]) -> None:
        given_up = CallbackDelivery.objects.filter(endpoint__in=queryset).exclude(given_up_at=None)
        replayed = given_up.replay()
        self.message_user(request, f"{replayed} delivery(ies) queued again.", messages.SUCCESS)


class CallbackAttemptInline(admin.TabularInline[CallbackAttempt, CallbackDelivery]):
    model = CallbackAttempt
    fields = readonly_fields = ("number", "attempted_at", "status_code", "duration_ms", "error")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CallbackDelivery)
class CallbackDeliveryAdmin(admin.ModelAdmin[CallbackDelivery]):
    """The delivery log: one row per event and endpoint, its attempts inside."""

    list_display = [
        "event_type",
        "message_id",
        "endpoint",
        "state",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "delivered_at",
    ]
    list_filter = ["endpoint", "event__type"]
    list_select_related = ["event", "endpoint"]
    search_fields = ["=event__message_id"]
    readonly_fields = [
        "endpoint",
        "event",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "given_up_at",
        "last_status_code",
        "last_error",
    ]
    inlines = [CallbackAttemptInline]
    actions = ["replay"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Event")
    def event_type(self, delivery: CallbackDelivery) -> str:
        return delivery.event.type

    @admin.display(description="webhook-id")
    def message_id(self, delivery: CallbackDelivery) -> str:
        return delivery.event.message_id

    @admin.action(description="Replay (send again now, with the same event id)")
    def replay(self, request: HttpRequest, queryset: QuerySet[CallbackDelivery]) -> None:
        replayed = CallbackDelivery.objects.filter(pk__in=queryset).replay()
        self.message_user(request, f"{replayed} delivery(ies) queued.", messages.SUCCESS)
