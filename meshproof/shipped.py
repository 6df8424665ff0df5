"""Where the folders meshproof ships live: in a checkout at the top of the repository, in an installed
wheel inside the package (setup.py copies them there, under the names below).

One function, so that no module guesses paths relative to its own file.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_DIR = PACKAGE_DIR.parent

#: repository folder -> folder inside the installed package (setup.py's DATA_FOLDERS); chaos/ goes in as
#: experiments/, since meshproof.chaos is the Chaos Toolkit extension's code
_INSIDE = {"profiles": "profiles", "loadprofiles": "loadprofiles", "chaos": "experiments",
           "tools/controlplane": "gomodules", "suites": "suites"}


def shipped(folder: str) -> Path:
    """The folder `folder` (a key of the table above) of this installation."""
    installed = PACKAGE_DIR / _INSIDE[folder]
    return installed if installed.is_dir() else CHECKOUT_DIR / folder
