"""Settings for the benchmark's web server: the project's, plus the synchronous baseline URL."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.sync_receiver"
