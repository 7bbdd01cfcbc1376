"""Log-in, log-out and password pages: the password change throttled like log-ins, the reset
pages only when e-mail is configured."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.core.mail import mailers
from django.core.mail.handler import DEFAULT_MAILER_ALIAS
from django.http import Http404, HttpRequest, HttpResponseBase
from django.urls import path


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """A wrong old password counts as a failed log-in for django-axes: the same limit, cool-off,
    lock-out page and admin unlock, so a borrowed session cannot guess the password here."""

    def __init__(self, user: Any, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(user, *args, **kwargs)
        self.request = request

    def clean_old_password(self) -> str:
        credentials = {"username": self.user.get_username()}
        if AxesProxyHandler.is_locked(self.request, credentials):
            raise ValidationError(
                "Too many wrong passwords: try again later.", code="password_locked"
            )
        try:
            return str(super().clean_old_password())
        except ValidationError:
            user_login_failed.send(__name__, credentials=credentials, request=self.request)
            raise


class ThrottledPasswordChangeView(auth_views.PasswordChangeView):
    form_class = ThrottledPasswordChangeForm

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}


def _needs_email(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Password reset mails a link: without e-mail configured its pages do not exist."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if DEFAULT_MAILER_ALIAS not in mailers:
            raise Http404("Password reset needs e-mail (EMAIL_URL).")
        return view(request, *args, **kwargs)

    return wrapper


urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password_change/", ThrottledPasswordChangeView.as_view(), name="password_change"),
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path(
        "password_reset/",
        _needs_email(auth_views.PasswordResetView.as_view()),
        name="password_reset",
    ),
    path(
        "password_reset/done/",
        _needs_email(auth_views.PasswordResetDoneView.as_view()),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        _needs_email(auth_views.PasswordResetConfirmView.as_view()),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        _needs_email(auth_views.PasswordResetCompleteView.as_view()),
        name="password_reset_complete",
    ),
]
