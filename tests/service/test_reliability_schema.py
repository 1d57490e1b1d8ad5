"""Schemathesis against the app's own OpenAPI schema: no server error, every answer as documented.

Each operation gets schema-valid and schema-violating requests (bodies, query strings, headers);
every response must have a documented status, content type, headers and body schema. The check
``positive_data_acceptance`` is left out: a body that the schema allows (any bytes as
``format: binary``) is rightly refused with 400 when it is no image. A schema-violating body may
also be refused with 413: the JSON routes cap their bodies at the size of the largest valid one
(docs/security.md), so rows longer than the schema allows can overflow that cap first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

from service.app import create_app
from service.settings import Settings
from tests.service.helpers import settings_for

Z = 32  # mnist32 latent_dim
ANSWERED: Counter[int] = Counter()


def documented_schema() -> dict[str, Any]:
    """The schema an app serving an mnist32 bundle publishes (the latent width comes from the model)."""
    document = create_app(Settings(models_dir=Path("/nonexistent"))).openapi()
    decode = document["paths"]["/decode"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    ends = document["paths"]["/interpolate"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    for row in (decode["properties"]["z"]["items"], ends["properties"]["a"], ends["properties"]["b"]):
        row["minItems"] = row["maxItems"] = Z
    return document


schemathesis.serializer.alias("image/bmp", "application/octet-stream")  # raw bytes, as for the other image types

# Loaded at import, as @schema.parametrize() needs; the requests go to ``served_app`` (below).
# (schemathesis.pytest.from_fixture would defer this to a fixture, but fails under pytest 9.)
REJECTED = [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]  # 413: a body over the route's byte cap
CONFIG = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": REJECTED}}})
schema = schemathesis.openapi.from_dict(documented_schema(), config=CONFIG)


@pytest.fixture(scope="module")
def served_app(bundles: Path) -> Iterator[FastAPI]:
    """An app serving the v1 bundle; schemathesis starts its lifespan on the first call."""
    yield create_app(settings_for(bundles))
    asgi.shutdown_lifespans()  # else it serves (threads, sessions) until the test process exits
    print(f"\nschemathesis: {sum(ANSWERED.values())} cases; statuses {dict(sorted(ANSWERED.items()))}")


def test_the_schema_used_is_the_served_one(served_app: FastAPI) -> None:
    from fastapi.testclient import TestClient

    with TestClient(served_app) as client:
        assert client.get("/openapi.json").json() == documented_schema()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: schemathesis.Case, served_app: FastAPI) -> None:
    response = case.call_and_validate(app=served_app, excluded_checks=[positive_data_acceptance])
    ANSWERED[response.status_code] += 1
    assert response.status_code < 500
    assert b"Traceback" not in response.content
