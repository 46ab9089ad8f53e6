"""A second settings module: Kasagi inside a "site" whose users are its own model.

It is ``kasagi_project.settings`` plus one app, ``members``, whose ``Member``
signs in with an email (``USERNAME_FIELD = "email"``, no ``username``
column) and is ``AUTH_USER_MODEL``. Live servers run with
``DJANGO_SETTINGS_MODULE=tests.auth.site.settings`` on a database migrated
with it (tests/auth/test_custom_user_model.py).
"""

from kasagi_project.settings import *  # noqa: F403
from kasagi_project.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.auth.site.members"]
AUTH_USER_MODEL = "members.Member"
