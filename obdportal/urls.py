from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from calls.api.site import api
from calls.api.site import urlpatterns as api_urlpatterns


@login_not_required
def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """Browsers ask for /favicon.ico on pages that name no icon (/healthz, the API's JSON):
    the portal's, not a 404 logged each time. Looked up per request, as the static files'
    manifest may not be read when the URLs are."""
    return HttpResponseRedirect(static("favicon.svg"))


urlpatterns = [
    # The admin's own password form is not throttled: send staff to the portal's.
    path("admin/password_change/", RedirectView.as_view(pattern_name="password_change")),
    path("admin/", admin.site.urls),
    path("favicon.ico", favicon),
    path("accounts/", include("obdportal.accounts")),
    path("api/v1/", include((api_urlpatterns(), "api"), namespace=api.urls_namespace)),
    path("", include("calls.urls")),
]
