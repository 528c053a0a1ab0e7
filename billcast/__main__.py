"""``python -m billcast``: the same as the ``billcast`` command."""

from billcast.cli import main

raise SystemExit(main())
