"""Billcast's renderer: storyboards merged with any mapping of values into video.

It knows nothing of bills: ``jobs`` turns a record into the values.
"""

from .cache import SegmentCache as SegmentCache
from .cache import default_cache_dir as default_cache_dir
from .captions import webvtt as webvtt
from .compose import Compositor as Compositor
from .compose import layer_state as layer_state
from .draw import Drawer as Drawer
from .encoding import VideoSettings as VideoSettings
from .errors import AssetError as AssetError
from .errors import BillcastError as BillcastError
from .errors import EncodeError as EncodeError
from .errors import PaymentError as PaymentError
from .errors import PublishError as PublishError
from .errors import RecordError as RecordError
from .errors import SettingsError as SettingsError
from .errors import SourceError as SourceError
from .errors import SourceErrors as SourceErrors
from .errors import StoryboardError as StoryboardError
from .layout import layer_keys as layer_keys
from .layout import overflowing as overflowing
from .packaged import packaged as packaged
from .plan import plan as plan
from .render import ENGINES as ENGINES
from .render import RenderResult as RenderResult
from .render import cta_document as cta_document
from .render import default_fonts_dir as default_fonts_dir
from .render import preview as preview
from .render import render as render
from .render import replace_dir as replace_dir
from .sandbox import BoundedSandbox as BoundedSandbox
from .segments import ENGINE_VERSION as ENGINE_VERSION
from .storyboard import Storyboard as Storyboard
from .storyboard import StoryboardModel as StoryboardModel
from .templating import parse_locale as parse_locale
from .storyboard import StoryboardErrors as StoryboardErrors
from .storyboard import default_assets_dir as default_assets_dir
from .storyboard import load_storyboard as load_storyboard
from .storyboard import parse_storyboard as parse_storyboard
from .storyboard import read_storyboard as read_storyboard
from .text import FACES as FACES
from .text import FontBook as FontBook
from .timeline import Timeline as Timeline
