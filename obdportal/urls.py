from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    # The admin's own password form is not throttled: send staff to the portal's.
    path("admin/password_change/", RedirectView.as_view(pattern_name="password_change")),
    path("admin/", admin.site.urls),
    path("accounts/", include("obdportal.accounts")),
    path("", include("calls.urls")),
]
