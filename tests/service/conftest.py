"""Fixtures of the service tests: a tiny exported mnist32 bundle (two versions) and app clients.

Helpers live in tests/service/helpers.py and are imported from there.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.service.helpers import export_mnist32, settings_for


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with mnist/v1 (LATEST) and mnist/v2 (published, not LATEST); never modified."""
    models_dir = tmp_path_factory.mktemp("models")
    export_mnist32(models_dir, "v1", seed=0)
    export_mnist32(models_dir, "v2", seed=1, update_latest=False)
    return models_dir


@pytest.fixture
def models_dir(bundles: Path, tmp_path: Path) -> Path:
    """A private copy of ``bundles`` that a test may change (publish, tamper with)."""
    return Path(shutil.copytree(bundles, tmp_path / "models"))


ClientFactory = Callable[..., AbstractContextManager[TestClient]]


@pytest.fixture
def make_client(bundles: Path) -> ClientFactory:
    """``with make_client(max_batch=1, models_dir=...) as client:`` runs the app's lifespan."""

    @contextmanager
    def factory(models_dir: Path | None = None, **overrides: Any) -> Iterator[TestClient]:
        app = create_app(settings_for(models_dir or bundles, **overrides))
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client

    return factory


@pytest.fixture(scope="module")
def client(bundles: Path) -> Iterator[TestClient]:
    """One app on the v1 bundle, shared by a module's read-only tests."""
    app = create_app(settings_for(bundles, max_wait_ms=1.0))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
