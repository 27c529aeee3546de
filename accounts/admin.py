"""django-axes' lockout list in the admin, without its one unsafe action.

Staff unlock someone by deleting their access attempt (Django's delete action, which needs
the delete permission). Axes' "Clean up expired attempts" action is dropped: it declares no
permission, so any staff member who may view the list could run it, and it fails with a 500
outside a login request (it reads attributes only axes' login path sets). Expired attempts
are cleaned on every login anyway.
"""

from __future__ import annotations

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin

admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class LockoutAdmin(AccessAttemptAdmin):
    actions = []
