from django.contrib import admin, messages

from calls.models import AudioAsset, Bridge, CallEvent, CallLog, IvrFlow


@admin.register(Bridge)
class BridgeAdmin(admin.ModelAdmin):
    list_display = ["number", "label", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["number", "label"]
    ordering = ["label", "number"]


@admin.register(IvrFlow)
class IvrFlowAdmin(admin.ModelAdmin):
    list_display = ["name", "flow_id", "template", "variable_names", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name", "flow_id", "template"]
    ordering = ["name"]

    @admin.display(description="Variables")
    def variable_names(self, flow: IvrFlow) -> str:
        return ", ".join(f"{n} (masked)" if s else n for n, s in flow.variable_specs) or "—"


@admin.register(AudioAsset)
class AudioAssetAdmin(admin.ModelAdmin):
    list_display = ["name", "sound_id", "url", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name", "sound_id", "url"]
    ordering = ["name"]


class CallEventInline(admin.TabularInline):
    model = CallEvent
    fields = [
        "received_at",
        "source",
        "raw_status",
        "outcome",
        "started_at",
        "deliveries",
        "parse_error",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CallLog)
class CallLogAdmin(admin.ModelAdmin):
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
    search_fields = ["=to", "=provider_id", "=provider_key"]
    list_select_related = ["bridge", "flow", "audio", "created_by"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # no COUNT(*) over millions of rows
    inlines = [CallEventInline]
    readonly_fields = [f.name for f in CallLog._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # calls are placed through the portal, which sends them


@admin.register(CallEvent)
class CallEventAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Match again to their calls")
    def rematch(self, request, queryset) -> None:
        matched = sum(1 for event in queryset.filter(call=None) if event.match())
        self.message_user(request, f"{matched} event(s) matched to a call.", messages.SUCCESS)
