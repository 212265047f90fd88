"""Fixtures of the deployment tests: a test CA made with openssl, and a site built once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.deploy.tls import TestCA


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The static site built from the current sources, as `make site` does."""
    sys.path.insert(0, str(REPO_ROOT / "web"))
    import build_site

    return build_site.build(tmp_path_factory.mktemp("site") / "site")
