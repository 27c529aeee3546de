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
  Mail is not sent: read it under the admin, "Development outbox".
  Ctrl-C stops the web server, the workers and PostgreSQL.
  If one process stops on its own (say you kill the worker), honcho stops all the others
  too, PostgreSQL included: run \`make run\` again.

MSG
# honcho gives each process a PORT of its own; links in mail and the development gyms' ports
# derive from the web's (config/settings.py), whichever process reads them.
export WEB_PORT="${PORT}"
# Ctrl-C reaches us (withdb.py forwards it to this process group) as it reaches honcho, which
# then stops every process: that is the stop that was asked for, not a failure to report.
stopping=""
trap 'stopping=yes' INT TERM
status=0
honcho --no-colour start --port "${PORT}" || status=$?
if [ -n "$stopping" ]; then
    echo "Stopped."
    exit 0
fi
echo "A process stopped on its own (exit status $status), so honcho stopped the others." >&2
echo "Run \`make run\` again to start everything." >&2
exit "$(( status == 0 ? 1 : status ))"
