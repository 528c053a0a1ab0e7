"""Where the data that ships in the wheel is: fonts and images, the storyboards, the sample records.

Found through :mod:`importlib.resources`, so it works the same from a checkout
(an editable install), an installed wheel, or any other folder. Every caller that
takes a folder of its own (``--assets DIR``, a campaign's storyboard paths) passes
it instead; these are only the defaults.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Literal

Data = Literal["assets", "storyboards", "examples"]


def packaged(name: Data) -> Path:
    """The folder of one packaged data set: ``assets``, ``storyboards`` or ``examples``."""
    return Path(str(files(f"billcast.{name}")))
