"""gunicorn's configuration for Billcast, for ``gunicorn -c gunicorn.conf.py billcast.wsgi:public_app``
(and, as a process of its own, ``billcast.wsgi:admin_app``; ``billcast.wsgi:app`` is both in one).

It is what ``billcast serve`` runs with, read from the same settings
(docs/CONFIGURATION.md: ``BILLCAST_HOST``, ``BILLCAST_PORT``, ``BILLCAST_WORKERS``,
``BILLCAST_THREADS``, ``BILLCAST_TIMEOUT``, or the ``BILLCAST_CONFIG`` file):

- gthread workers (keep-alive; a slow client holds a thread, not a process),
  the app loaded once in the master and forked (``preload_app``);
- no access log: the app logs each request itself, without the client's
  address or the token in the path; gunicorn's own log goes through the same
  formatter (``BILLCAST_LOG_FORMAT``) and is scrubbed of both;
- gunicorn's X-Forwarded-* handling off: the app's ``BILLCAST_TRUSTED_PROXIES``
  is the one place that says which proxy headers to believe.

``billcast serve`` needs no such file; this one is for running gunicorn
yourself (another process manager, extra gunicorn settings added below).
"""

import os
import sys

from billcast.renderer import BillcastError
from billcast.server import gunicorn_options
from billcast.settings import load_settings

try:
    _settings = load_settings(os.environ)
except BillcastError as _error:  # one line naming the setting, as everywhere else
    print(f"error: {_error}", file=sys.stderr)
    sys.exit(_error.exit_code)

for _name, _value in gunicorn_options(_settings).items():
    globals()[_name] = _value

# Site-specific gunicorn settings go here, for example:
# max_requests = 10000        # recycle a worker after this many requests
# max_requests_jitter = 1000
