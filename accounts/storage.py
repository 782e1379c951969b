"""Private file storage (R51): outside MEDIA_ROOT, with no URL; files are served only by auditing views."""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import FileSystemStorage


class PrivateStorage(FileSystemStorage):
    def url(self, name):
        raise ValueError("Private files have no URL; serve them through a view that checks rights and audits.")


def private_storage() -> PrivateStorage:
    """A callable, so migrations do not bake in the path and tests can point PRIVATE_MEDIA_ROOT elsewhere."""
    return PrivateStorage(location=settings.PRIVATE_MEDIA_ROOT)
