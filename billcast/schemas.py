"""The JSON Schema of each file a person writes, from the pydantic models that validate it.

For editors' YAML and TOML support and for the studio's code view: the schema says
what the model accepts, and the model stays the one source of truth.
"""

from __future__ import annotations

from typing import Any

from billcast.jobs import Record
from billcast.jobs.campaign import CampaignModel
from billcast.renderer import StoryboardModel

TITLES = {"storyboard": "Billcast storyboard", "campaign": "Billcast campaign file", "record": "Billcast customer record"}


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``storyboard``, ``campaign`` or ``record``."""
    model = {"storyboard": StoryboardModel, "campaign": CampaignModel, "record": Record}[name]
    schema = model.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "title": TITLES[name]}
