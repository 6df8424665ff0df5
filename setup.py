"""Maps the repository's top-level folders into the installed package (pyproject.toml has the rest).

The repository keeps the design's layout: suites/ and fixtures/ (Python packages), profiles/,
loadprofiles/, chaos/ and tools/controlplane/ (data) at the top. A wheel carries them as
meshproof/suites, meshproof/fixtures, meshproof/profiles, ... so that nothing named `suites` or
`fixtures` lands at the top of site-packages. An editable install maps the two packages the same
way; meshproof.shipped finds the data folders in either layout.
"""

from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

MAPPED_PACKAGES = {"meshproof.suites": "suites", "meshproof.fixtures": "fixtures"}
#: repository folder -> folder inside the installed package (meshproof.shipped reads the same table)
DATA_FOLDERS = {"profiles": "profiles", "loadprofiles": "loadprofiles", "chaos": "experiments",
                "tools/controlplane": "gomodules"}


class BuildWithData(build_py):
    """Copies the data folders into the built package (wheels; an editable install reads the checkout)."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        for folder, inside in DATA_FOLDERS.items():
            for source in Path(folder).rglob("*"):
                if source.is_file() and "__pycache__" not in source.parts:
                    target = Path(self.build_lib) / "meshproof" / inside / source.relative_to(folder)
                    self.mkpath(str(target.parent))
                    self.copy_file(str(source), str(target))


setup(
    packages=[*find_packages(include=["meshproof", "meshproof.*"]), *MAPPED_PACKAGES],
    package_dir=MAPPED_PACKAGES,
    cmdclass={"build_py": BuildWithData},
)
