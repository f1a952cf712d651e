"""The WSGI entry point (gunicorn: deploy/gunicorn.conf.py).

It defaults to production settings: a deployment that forgets DJANGO_SETTINGS_MODULE gets
DEBUG off and refuses to start without SECRET_KEY and ALLOWED_HOSTS, never Django's technical
error pages. Development asks for ``config.settings.dev`` explicitly.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_wsgi_application()
