"""Campaign files: who gets which storyboard, where outputs go, and how links are made.

A campaign is one TOML file (``docs/CAMPAIGNS.md``). ``schema`` is its shape
(pydantic, at the edge); ``load`` reads it, resolves it into a frozen
:class:`Campaign` (``model``) and reports every problem at once; ``choice``
picks each record's storyboard and variant.
"""

from .choice import Choice as Choice
from .choice import ChoiceError as ChoiceError
from .choice import choose as choose
from .load import CampaignError as CampaignError
from .load import CampaignErrors as CampaignErrors
from .load import load_campaign as load_campaign
from .model import Campaign as Campaign
from .model import Experiment as Experiment
from .model import Rule as Rule
from .model import Variant as Variant
from .model import campaign_hash as campaign_hash
from .schema import CampaignModel as CampaignModel

__all__ = [
    "Campaign", "CampaignError", "CampaignErrors", "CampaignModel", "Experiment", "Choice", "ChoiceError", "Rule", "Variant",
    "campaign_hash", "choose", "load_campaign",
]
