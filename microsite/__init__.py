"""Billcast's microsite: the static page builder and the service that serves and takes payments.

The builder (this package's public names below) imports only ``renderer``; it
turns one recipient's record values, render outputs, token and the campaign's
settings into a folder of static files.
"""

from .assets import static_dir as static_dir
from .assets import static_files as static_files
from .build import Site as Site
from .build import build_site as build_site
from .build import page_language as page_language
from .build import plan_block as plan_block
from .catalog import Catalogs as Catalogs
from .catalog import Messages as Messages
from .catalog import load_catalogs as load_catalogs
from .errors import SiteError as SiteError
from .links import PAY_OPTIONS as PAY_OPTIONS
from .links import SOURCES as SOURCES
from .links import dispute_link as dispute_link
from .links import optout_link as optout_link
from .links import origin as origin
from .links import page_link as page_link
from .links import pay_link as pay_link
from .plan_state import PlanView as PlanView
from .qr import qr_matrix as qr_matrix
from .settings import Disclosure as Disclosure
from .settings import SiteSettings as SiteSettings
from .video import Cta as Cta
from .video import Video as Video
from .video import parse_cta as parse_cta
from .video import read_video as read_video
from .write import write_site as write_site
