"""Fixtures of the end-to-end tests: the client codec a test runs on.

A test that exchanges ordinary messages takes ``conn_type`` and runs three times,
with every bare client on JSON, MessagePack and the compact codec (bin1); the same
assertions hold on each because both binary codecs decode to exactly what JSON
gives. Tests whose subject is JSON text itself keep ``tests.wsclient.Conn``.
"""

from __future__ import annotations

import pytest

from tests.wsclient import CODECS, Conn


@pytest.fixture(params=list(CODECS))
def conn_type(request: pytest.FixtureRequest) -> type[Conn]:
    """The bare client class of one codec (ids: json, msgpack, bin1)."""
    return CODECS[request.param]
