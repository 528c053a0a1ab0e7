"""Billcast's service: the Flask apps that serve pages locally, take payments and webhooks,
receive the pages' beacons (the public side), and show reports and the storyboard studio
(the admin side).

Made by :func:`create_public_app`, :func:`create_admin_app` or, both in one,
:func:`create_app`, from one :class:`ServiceSettings`. Blueprints reach what they
share through ``current_app`` (:func:`billcast.service.context.service`), never by
importing the factory.
"""

from .settings import ServiceSettings as ServiceSettings
from .app import ADMIN_PREFIXES as ADMIN_PREFIXES
from .app import create_admin_app as create_admin_app
from .app import create_app as create_app
from .app import create_public_app as create_public_app
