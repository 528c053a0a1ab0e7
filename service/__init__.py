"""Billcast's service: the Flask app that serves pages locally, takes payments and webhooks,
receives the pages' beacons, and shows reports and the storyboard studio.

Made by :func:`create_app` from one :class:`ServiceSettings`. Blueprints reach what
they share through ``current_app`` (:func:`billcast.service.context.service`), never
by importing the factory.
"""

from .settings import ServiceSettings as ServiceSettings
from .app import create_app as create_app
