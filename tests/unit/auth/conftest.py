from __future__ import annotations

import pytest

from server.auth.issuer import LocalIssuer
from server.settings import Settings
from tests.support.processes import free_port
from tests.unit.auth.tokenkit import AUDIENCE, TokenKit, make_kit


@pytest.fixture(scope="session")
def kit(tmp_path_factory) -> TokenKit:
    return make_kit(tmp_path_factory.mktemp("kit"))


@pytest.fixture
def auth_settings(tmp_path, kit) -> Settings:
    return kit.trusting(Settings(var_dir=str(tmp_path)))


@pytest.fixture(scope="session")
def served_issuer(tmp_path_factory):
    """A development issuer really listening on a loopback port."""
    port = free_port()
    issuer = LocalIssuer(tmp_path_factory.mktemp("served") / "issuer", f"http://127.0.0.1:{port}")
    server = issuer.start(port=port)
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def served_kit(served_issuer, kit) -> TokenKit:
    return TokenKit(served_issuer, kit.stranger, AUDIENCE)
