"""Pulumi archives zipped as the engine zips them, for the Lambda functions created in moto.

The local Lambda workers start from the very zip the program declares, so the archive a function
runs locally is byte for byte the one `pulumi up` would upload.
"""

from __future__ import annotations

import io
import os
import zipfile
from typing import Any

import pulumi

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def archive_to_zip(archive: Any) -> bytes:
    """Zip a Pulumi archive as the engine would: paths relative to the folder root, fixed timestamps.

    `__pycache__` folders and `.pyc` files are left out (they are build litter, not code).
    """
    if isinstance(archive, pulumi.FileArchive) and os.path.isfile(archive.path):
        with open(archive.path, "rb") as handle:  # an already built .zip
            return handle.read()
    entries: dict[str, bytes] = {}
    _collect(archive, "", entries)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(info, entries[name])
    return buffer.getvalue()


def _collect(item: Any, prefix: str, entries: dict[str, bytes]) -> None:
    if isinstance(item, pulumi.FileArchive):
        root = item.path
        if os.path.isfile(root):
            with zipfile.ZipFile(root) as archive:
                for name in archive.namelist():
                    if not name.endswith("/"):
                        entries[prefix + name] = archive.read(name)
            return
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in files:
                if name.endswith(".pyc"):
                    continue
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, root).replace(os.sep, "/")
                with open(path, "rb") as handle:
                    entries[prefix + rel] = handle.read()
    elif isinstance(item, pulumi.AssetArchive):
        for name, sub in item.assets.items():
            if isinstance(sub, pulumi.Archive):
                _collect(sub, f"{prefix}{name}/", entries)
            else:
                _collect(sub, prefix + name, entries)
    elif isinstance(item, pulumi.FileAsset):
        with open(item.path, "rb") as handle:
            entries[prefix] = handle.read()
    elif isinstance(item, pulumi.StringAsset):
        entries[prefix] = item.text.encode()
    else:
        raise ValueError(f"cannot package {type(item).__name__} for the local Lambda runtime")
