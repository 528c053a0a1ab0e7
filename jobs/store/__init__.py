"""Object storage for published outputs: a folder on disk or an S3 bucket, behind one interface.

``open_store("file://var/store")`` gives a :class:`FolderStore` (the default, no services
needed); ``open_store("s3://bucket/prefix", endpoint_url=...)`` gives an :class:`S3Store` that
talks to AWS S3, MinIO, Cloudflare R2 or any S3-compatible service through boto3. Both keep an
object's Content-Type, Cache-Control and small user metadata, so a folder published locally is
served with the same headers the bucket would send. Nothing here touches the network or the disk
until a method is called.

``base`` holds the contract, ``folder`` and ``s3`` the backends, ``open`` the choice between them.
"""

from .base import IMMUTABLE as IMMUTABLE
from .base import NO_STORE as NO_STORE
from .base import PRIVATE as PRIVATE
from .base import private_cache as private_cache
from .base import ObjectInfo as ObjectInfo
from .base import ObjectNotFound as ObjectNotFound
from .base import ObjectStore as ObjectStore
from .base import guess_content_type as guess_content_type
from .folder import FolderStore as FolderStore
from .from_url import open_store as open_store
from .s3 import S3Store as S3Store
