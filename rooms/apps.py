"""The rooms app: Django models for rooms, snapshots and session tokens.

``ready()`` plugs the database-backed directory and the write-behind
persistence into the engine (``sync.runtime.install``) when
``settings.KASAGI["persistence"]`` is true. It only registers factories:
nothing touches the database until the engine starts in a running server,
so ``manage.py migrate`` on an empty database and test runners are safe.
"""

from django.apps import AppConfig


class RoomsConfig(AppConfig):
    name = "rooms"
    verbose_name = "Rooms"

    def ready(self) -> None:
        from sync import runtime
        from sync.conf import kasagi_settings

        if not kasagi_settings().persistence:
            return

        from .directory import DatabaseDirectory
        from .persistence import database_persistence

        runtime.install(
            directory=lambda conf: DatabaseDirectory(), persistence=database_persistence
        )
