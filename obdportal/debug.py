"""Secrets kept out of the error page and error mails (DEBUG too) and out of the development
server's request log."""

import logging
import re
from typing import Any

from django.conf import settings
from django.views.debug import SafeExceptionReporterFilter


class SecretScrubbingFilter(SafeExceptionReporterFilter):
    """Django hides settings and request.META entries by name (…PASS…, …KEY…); the error page
    (with DEBUG too) and error mails also hide secrets inside values: a password in any URL (a
    DATABASE_URL that runserver copies from the environment into request.META), a libpq
    `password=`, and any configured secret, in settings, META and traceback locals (a failed
    connection's parameters)."""

    _url_password = re.compile(r"(://[^/@:\s]*:)[^/@\s]+@")
    _keyword_password = re.compile(r"(password\s*=\s*)('[^']*'|[^\s']+)", re.IGNORECASE)

    def _secrets(self) -> set[str]:
        found = {
            settings.SECRET_KEY,
            *settings.SECRET_KEY_FALLBACKS,
            settings.OBD_WEBHOOK_SECRET,
            settings.OBD_WEBHOOK_VERIFICATION_TOKEN,
            settings.MOBTEXTING_API_TOKEN,
            *(
                str(m.get("OPTIONS", {}).get("password") or "")
                for m in getattr(settings, "MAILERS", {}).values()
            ),
            *(str(db.get("PASSWORD") or "") for db in settings.DATABASES.values()),
        }
        return {secret for secret in found if len(secret) >= 6}  # shorter ones match by chance

    def _scrub(self, text: str) -> str:
        stars = self.cleansed_substitute
        text = self._url_password.sub(lambda m: f"{m[1]}{stars}@", text)
        text = self._keyword_password.sub(lambda m: f"{m[1]}{stars}", text)
        for secret in self._secrets():
            text = text.replace(secret, stars)
        return text

    def _scrub_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._scrub(str(value))  # str() also resolves lazy strings
        if isinstance(value, dict):
            return {k: self.cleanse_setting(k, v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrub_value(v) for v in value]
        try:
            text = repr(value)
        except Exception:  # a broken __repr__ shows as such on the page; nothing to hide here
            return value
        return self.cleansed_substitute if self._scrub(text) != text else value

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        return self._scrub_value(super().cleanse_setting(key, value))

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        return [
            (name, self._scrub_value(value))
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]


class WithoutQueryStrings(logging.Filter):
    """runserver logs each request line whole; the provider's verification request carries its
    token in the query string (`?token=`), and searches carry customers' numbers. gunicorn's log
    format leaves them out the same way (gunicorn.conf.py)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args and isinstance(record.args[0], str):
            record.args = (QUERY_STRING.sub("", record.args[0]), *record.args[1:])
        return True


QUERY_STRING = re.compile(r"\?\S*")


class ClientErrorsInOneLine(logging.Filter):
    """Django logs a refused request (403, 404…) with the traceback of the exception that refused
    it: a page of noise for each person who follows an old link. A server error keeps its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", 500) < 500:
            record.exc_info = record.exc_text = None
        return True
