from django.urls import path

from calls import views

app_name = "calls"

urlpatterns = [
    path("", views.home, name="home"),
    path("catalogue/", views.catalogue, name="catalogue"),
    path("calls/", views.call_list, name="call-list"),
    path("calls/new/", views.call_new, name="call-new"),
    path("calls/<int:pk>/", views.call_detail, name="call-detail"),
    path("calls/<int:pk>/retry/", views.call_retry, name="call-retry"),
    path("webhooks/mobtexting/", views.mobtexting_webhook, name="webhook"),
]
