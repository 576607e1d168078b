"""A real Prometheus (Debian's `prometheus` package) on loopback, scraping an exporter the test serves."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from integrations.testing.prometheus import BINARY, Exporter, Prometheus
from tests.conftest import missing_tool


def require_prometheus() -> str:
    """The binary (`missing_tool` when absent)."""
    if os.path.exists(BINARY) and os.access(BINARY, os.X_OK):
        return BINARY
    missing_tool(f"prometheus not found at {BINARY}: install it with `apt-get install -y prometheus` (or `make tools`)")


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    served = Exporter()
    served.values = {"queue_depth": {'queue="billing"': 7, 'queue="mail"': 3}, "build_info": {"": 1}}
    served.start()
    yield served
    served.stop()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, exporter: Exporter) -> Iterator[Prometheus]:
    server = Prometheus(Path(tmp_path_factory.mktemp("prometheus")), [exporter.address],
                        binary=require_prometheus()).start()
    try:
        server.scraped()
        yield server
    finally:
        server.stop()
