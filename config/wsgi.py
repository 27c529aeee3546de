"""WSGI entry point: `granian --interface wsgi config.wsgi:application` (the Procfile's web)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
