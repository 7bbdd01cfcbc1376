from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from calls.api.site import api
from calls.api.site import urlpatterns as api_urlpatterns

urlpatterns = [
    # The admin's own password form is not throttled: send staff to the portal's.
    path("admin/password_change/", RedirectView.as_view(pattern_name="password_change")),
    path("admin/", admin.site.urls),
    path("accounts/", include("obdportal.accounts")),
    path("api/v1/", include((api_urlpatterns(), "api"), namespace=api.urls_namespace)),
    path("", include("calls.urls")),
]
