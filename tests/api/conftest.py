from typing import Any

import pytest

from tests.api.engine import engine  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
