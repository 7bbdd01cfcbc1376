from django.urls import path, re_path

from calls import (
    campaign_views,
    connect,
    door,
    notifications,
    preferences,
    recordings,
    sounds,
    views,
)

app_name = "calls"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
    path("catalogue/sounds/upload/", sounds.sound_upload, name="sound-upload"),
    path(
        "catalogue/sounds/uploads/<int:pk>/",
        sounds.sound_upload_progress,
        name="sound-upload-progress",
    ),
    path("calls/export.csv", views.call_export, name="call-export"),
    path("catalogue/", views.catalogue, name="catalogue"),
    path("calls/", views.call_list, name="call-list"),
    path("calls/new/", views.call_new, name="call-new"),
    path("calls/<int:pk>/", views.call_detail, name="call-detail"),
    path("calls/<int:pk>/retry/", views.call_retry, name="call-retry"),
    path("calls/<int:pk>/cancel/", views.call_cancel, name="call-cancel"),
    path("calls/<int:pk>/recording/", recordings.call_recording, name="call-recording"),
    path("sandbox/recording.wav", recordings.sandbox_clip, name="sandbox-recording"),
    path("campaigns/", campaign_views.campaign_list, name="campaign-list"),
    path("campaigns/new/", campaign_views.campaign_new, name="campaign-new"),
    path("campaigns/sample.csv", campaign_views.campaign_sample_csv, name="campaign-sample"),
    path("campaigns/<int:pk>/", campaign_views.campaign_detail, name="campaign-detail"),
    path("campaigns/<int:pk>/upload/", campaign_views.campaign_upload, name="campaign-upload"),
    path(
        "campaigns/<int:pk>/import/cancel/",
        campaign_views.campaign_import_cancel,
        name="campaign-import-cancel",
    ),
    path("campaigns/<int:pk>/again/", campaign_views.campaign_again, name="campaign-again"),
    path(
        "campaigns/<int:pk>/set-aside.csv",
        campaign_views.campaign_set_aside_csv,
        name="campaign-set-aside",
    ),
    path(
        "campaigns/<int:pk>/keypresses.csv",
        campaign_views.campaign_keypresses_csv,
        name="campaign-keypresses",
    ),
    re_path(
        r"^campaigns/(?P<pk>\d+)/(?P<action>start|stop)/confirm/$",
        campaign_views.campaign_confirm,
        name="campaign-confirm",
    ),
    re_path(
        r"^campaigns/(?P<pk>\d+)/(?P<action>start|pause|resume|stop|unschedule)/$",
        campaign_views.campaign_action,
        name="campaign-action",
    ),
    path("preferences/", preferences.preferences, name="preferences"),
    path("notices/", notifications.notices, name="notices"),
    path("connect/", connect.connect_provider, name="connect"),
    path("webhooks/mobtexting/", door.mobtexting_webhook, name="webhook"),
]
