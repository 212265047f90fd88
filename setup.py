"""Puts the built web site into the wheel, as `hushdrop_relay/site/`; pyproject.toml says the rest.

`hushdrop serve` from an installed wheel serves that copy (hushdrop_relay/config.py). The site is
built by `make site` (web/build_site.py needs node_modules, so a wheel is built from a checkout,
not from PyPI's sdist alone): this takes `build/site`, or the folder `$HUSHDROP_WHEEL_SITE` names.
An sdist carries the site along as `prebuilt-site/`, so `python -m build` (sdist, then the wheel
from it) works too. Editable installs (`pip install -e .`) need none of this: they serve the
checkout's `build/site`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
SDIST_SITE = "prebuilt-site"
MANIFEST = "site-manifest.json"


def built_site() -> Path:
    for candidate in (
        os.environ.get("HUSHDROP_WHEEL_SITE"),
        HERE / SDIST_SITE,
        HERE / "build/site",
    ):
        if candidate and (Path(candidate) / MANIFEST).is_file():
            return Path(candidate)
    raise SystemExit("No built site to package: run `make site` first (or `make wheel`).")


class BuildPyWithSite(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "hushdrop_relay" / "site"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(built_site(), target)


class SdistWithSite(sdist):
    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        shutil.copytree(built_site(), Path(base_dir) / SDIST_SITE)


setup(cmdclass={"build_py": BuildPyWithSite, "sdist": SdistWithSite})
