"""Billcast's microsite: the static page builder and the service that serves and takes payments."""
