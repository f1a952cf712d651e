#!/usr/bin/env bash
# Start the site and the background task worker together; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
# The demo runs the development settings, asked for by name (manage.py defaults to production).
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-config.settings.dev}
# The daily job (reminders, digests, closing rounds past their date) books itself each day.
$py manage.py send_reminders --schedule -v 0
$py manage.py db_worker --interval 1 -v 0 &
worker=$!
pids=($worker)
# Live lectures: nginx's RTMP module beside the site (docs/live.md), or exactly why not.
if $py manage.py live_server --check; then
  $py manage.py live_server &
  pids+=($!)
else
  echo "Live lectures are off in this demo (see the line above; docs/live.md)."
fi
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT INT TERM
echo ""
echo "Lunxun is starting on http://127.0.0.1:8000  (admin: http://127.0.0.1:8000/admin/)"
echo "Demo logins are listed above and in README.md; every password is Lunxun@2026."
$py manage.py runserver 127.0.0.1:8000
