from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path

import calls.callbacks.admin  # (registers the callback endpoints and their log)
from calls.forms import CsvFileField, NumberField
from calls.forms.flows import IvrFlowForm
from calls.http import AuthenticatedHttpRequest
from calls.models import (
    AudioAsset,
    Bridge,
    CallEvent,
    CallLog,
    Campaign,
    DoNotCall,
    IvrFlow,
    SetAsideRow,
)
from calls.models.events import apply_events
from calls.vocabulary import provider_key


class NumberAdminForm(forms.ModelForm[Any]):  # Any: shared by Bridge and DoNotCall
    """Numbers typed as people type them (+91 80682 87602), stored as the provider wants."""

    number = NumberField(help_text="With country code, e.g. +91 80682 87602")


@admin.register(Bridge)
class BridgeAdmin(admin.ModelAdmin[Bridge]):
    form = NumberAdminForm
    list_display = ["number", "label", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["number", "label"]
    ordering = ["label", "number"]


@admin.register(IvrFlow)
class IvrFlowAdmin(admin.ModelAdmin[IvrFlow]):
    form = IvrFlowForm
    list_display = ["name", "flow_id", "template", "variable_names", "key_names", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name", "flow_id", "template"]
    ordering = ["name"]

    @admin.display(description="Variables")
    def variable_names(self, flow: IvrFlow) -> str:
        return ", ".join(f"{n} (masked)" if s else n for n, s in flow.variable_specs) or "—"

    @admin.display(description="Keys")
    def key_names(self, flow: IvrFlow) -> str:
        return ", ".join(flow.choice_words(key) for key in flow.choices) or "—"


@admin.register(AudioAsset)
class AudioAssetAdmin(admin.ModelAdmin[AudioAsset]):
    list_display = ["name", "sound_id", "url", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name", "sound_id", "url"]
    ordering = ["name"]


class CallEventInline(admin.TabularInline[CallEvent, CallLog]):
    model = CallEvent
    fields = readonly_fields = (
        "received_at",
        "source",
        "raw_status",
        "outcome",
        "started_at",
        "deliveries",
        "parse_error",
    )
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: CallLog | None = None) -> bool:
        return False


# Derived index columns and sealed secrets: nothing an administrator reads.
HIDDEN_CALL_FIELDS = ["to_reversed", "provider_key", "sealed_variables"]


@admin.register(CallLog)
class CallLogAdmin(admin.ModelAdmin[CallLog]):
    list_display = [
        "id",
        "created_at",
        "to",
        "bridge",
        "flow",
        "audio",
        "status",
        "provider_status",
        "duration",
        "created_by",
    ]
    list_filter = ["status", "bridge", "flow", "audio", "created_at"]
    search_fields = ["=to"]
    list_select_related = ["bridge", "flow", "audio", "created_by"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # no COUNT(*) over millions of rows
    inlines = [CallEventInline]
    exclude = HIDDEN_CALL_FIELDS
    readonly_fields = [f.name for f in CallLog._meta.fields if f.name not in HIDDEN_CALL_FIELDS]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # calls are placed through the portal, which sends them

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[CallLog], search_term: str
    ) -> tuple[QuerySet[CallLog], bool]:
        """A number, or a provider id in either form (`<uuid>` or `<uuid>:1`, any case): the
        id is looked up by its key, which is indexed; the id itself is not."""
        found, duplicates = super().get_search_results(request, queryset, search_term)
        if term := search_term.strip():
            found |= queryset.filter(provider_key=provider_key(term))
        return found, duplicates


@admin.register(CallEvent)
class CallEventAdmin(admin.ModelAdmin[CallEvent]):
    list_display = [
        "id",
        "received_at",
        "source",
        "call",
        "provider_id",
        "raw_status",
        "outcome",
        "deliveries",
        "matched",
        "parse_error",
    ]
    list_filter = ["source", "outcome", ("call", admin.EmptyFieldListFilter), "received_at"]
    search_fields = ["=provider_id", "body"]
    readonly_fields = [f.name for f in CallEvent._meta.fields]
    show_full_result_count = False
    actions = ["rematch"]

    @admin.display(boolean=True)
    def matched(self, event: CallEvent) -> bool:
        return event.is_matched

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Match again to their calls")
    def rematch(self, request: HttpRequest, queryset: QuerySet[CallEvent]) -> None:
        unmatched = queryset.filter(call=None)
        ids = list(unmatched.values_list("pk", flat=True))
        apply_events(CallEvent.objects.filter(pk__in=ids))
        matched = CallEvent.objects.filter(pk__in=ids).exclude(call=None).count()
        self.message_user(request, f"{matched} event(s) matched to a call.", messages.SUCCESS)


class DoNotCallImportForm(forms.Form):
    csv_file = CsvFileField(
        label="CSV file",
        help_text="A number column (first column or one named number); optional reason column.",
    )


@admin.register(DoNotCall)
class DoNotCallAdmin(admin.ModelAdmin[DoNotCall]):
    form = NumberAdminForm
    list_display = ["number", "source", "reason", "added_by", "created_at"]
    search_fields = ["=number", "reason"]
    list_filter = ["source", "created_at"]
    readonly_fields = ["source", "added_by", "created_at"]
    change_list_template = "admin/calls/donotcall/change_list.html"

    def save_model(
        self, request: HttpRequest, obj: DoNotCall, form: forms.ModelForm[DoNotCall], change: bool
    ) -> None:
        obj.added_by = obj.added_by or cast(User, request.user)  # the admin lets only staff in
        super().save_model(request, obj, form, change)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_csv),
                name="calls_donotcall_import",
            ),
            *super().get_urls(),
        ]

    def import_csv(self, request: AuthenticatedHttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = DoNotCallImportForm(request.POST or None, request.FILES or None)
        if form.is_valid():
            try:
                report = DoNotCall.import_csv(form.cleaned_data["csv_file"], request.user)
            except ValidationError as exc:  # not a CSV text: said on the form, nothing added
                form.add_error("csv_file", exc)
            else:
                level = messages.WARNING if report.skipped else messages.SUCCESS
                self.message_user(request, report.summary(), level)
                return redirect("admin:calls_donotcall_changelist")
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "opts": self.model._meta,
            "title": "Import do-not-call numbers",
        }
        return render(request, "admin/calls/donotcall/import.html", context)


class SetAsideRowInline(admin.TabularInline[SetAsideRow, Campaign]):
    model = SetAsideRow
    fields = readonly_fields = ("line", "values", "reason")
    extra = 0
    can_delete = False
    max_num = 0


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin[Campaign]):
    list_display = ["name", "status", "bridge", "flow", "audio", "pace", "created_by", "created_at"]
    list_filter = ["status", "bridge", "flow"]
    search_fields = ["name"]
    readonly_fields = [
        "status",
        "columns",
        "rows_set_aside",
        "next_send_at",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]
    inlines = [SetAsideRowInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # campaigns start from a CSV on the portal page


import calls.api.admin  # noqa: E402, F401  (API keys: registered with the admin beside the rest)
