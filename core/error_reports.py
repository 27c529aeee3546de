"""Error reports (admin e-mails, the DEBUG 500 page) with secrets hidden.

Django's SafeExceptionReporterFilter hides settings by name and only the POST fields and local
variables that a view marked with `sensitive_*` decorators. These subclasses also hide, by
name, POST fields and local variables that look secret; hide DATABASE_URL, SENTRY_DSN, ANYMAIL
and ALERT_WEBHOOK_URL; and pass the finished report through `core.redaction.redact` for
values that slipped into exception messages.
"""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from core.redaction import redact


class RedactingExceptionReporterFilter(SafeExceptionReporterFilter):
    """Hide settings, POST fields and frame variables whose names look secret."""

    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|DSN|DATABASE_URL|ANYMAIL"
        "|WEBHOOK_URL|CREDENTIAL|PRIVATE",
        flags=re.IGNORECASE,
    )

    def get_post_parameters(self, request: HttpRequest | None) -> Any:
        parameters = super().get_post_parameters(request)
        if request is None or not any(self.hidden_settings.search(k) for k in parameters):
            return parameters
        cleansed = parameters.copy()
        for key in cleansed:
            if self.hidden_settings.search(key):
                cleansed[key] = self.cleansed_substitute
        return cleansed

    def get_traceback_frame_variables(self, request: HttpRequest | None, tb_frame: Any) -> Any:
        return [
            (name, self.cleansed_substitute if self.hidden_settings.search(name) else value)
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]


class RedactingExceptionReporter(ExceptionReporter):
    """The stock report, with `redact` applied to the whole text and HTML."""

    def get_traceback_text(self) -> str:
        return redact(super().get_traceback_text())

    def get_traceback_html(self) -> str:
        return redact(super().get_traceback_html())
