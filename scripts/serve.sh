#!/bin/sh
# What `make run` runs once the database is up: migrate, then every process of the Procfile.
set -e
python manage.py migrate --noinput
python manage.py createcachetable
python manage.py collectstatic --noinput -v 0
# Every process (web workers, job workers) writes its Prometheus samples here; /metrics sums them.
export PROMETHEUS_MULTIPROC_DIR="${DATA_DIR:-var}/metrics"
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
cat <<MSG

  Serving http://127.0.0.1:${PORT}/   (admin: http://127.0.0.1:${PORT}/admin/)
  Create an admin user in another terminal:  make createsuperuser
  Ctrl-C stops the web server, the workers and PostgreSQL.

MSG
exec honcho --no-colour start --port "${PORT}"
