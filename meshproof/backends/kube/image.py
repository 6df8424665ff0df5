"""The echo app's container image: the files it is built from, its tag, and its build context.

The image holds Python and the echo app's modules (standard library only; meshproof/workloads/
Dockerfile). Its tag is a hash of exactly those files, so a changed echo app is a new image (kind
nodes keep images by tag, and `imagePullPolicy: IfNotPresent` would otherwise run the old one) and an
unchanged one is not rebuilt for nothing. The context is assembled in a directory of the run, from
the installed package or a checkout alike.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from meshproof.shipped import PACKAGE_DIR

REPOSITORY = "meshproof-echo"
#: What the image is built from, relative to the package's parent (the .dockerignore lists the same).
IMAGE_FILES = ("meshproof/__init__.py", "meshproof/durations.py", "meshproof/workloads/*.py")
DOCKERFILE = PACKAGE_DIR / "workloads" / "Dockerfile"


def sources() -> list[Path]:
    """Every file IMAGE_FILES names, in a stable order."""
    root = PACKAGE_DIR.parent
    return sorted(path for pattern in IMAGE_FILES for path in root.glob(pattern) if path.is_file())


def tag() -> str:
    """`meshproof-echo:<12 hex>`, from the Dockerfile and the sources' paths and contents."""
    digest = hashlib.sha256(DOCKERFILE.read_bytes())
    for path in sources():
        digest.update(str(path.relative_to(PACKAGE_DIR.parent)).encode() + b"\0" + path.read_bytes())
    return f"{REPOSITORY}:{digest.hexdigest()[:12]}"


def build_context(directory: Path) -> Path:
    """A docker build context with the Dockerfile and the sources, in `directory` (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy2(DOCKERFILE, directory / "Dockerfile")
    for path in sources():
        target = directory / path.relative_to(PACKAGE_DIR.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return directory
