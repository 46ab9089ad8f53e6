"""The rooms app: Django models for rooms, snapshots and session tokens.

``ready()`` plugs the database-backed directory and the write-behind
persistence into the engine (``sync.runtime.install``) when
``settings.KASAGI["persistence"]`` is true, and connects the signals that
apply a saved room configuration to the live room (``signals``). It only registers factories:
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

        from django.db.models.signals import m2m_changed, post_save

        from . import signals
        from .directory import DatabaseDirectory
        from .models import Room
        from .persistence import database_persistence

        post_save.connect(signals.room_saved, sender=Room, dispatch_uid="kasagi-room-saved")
        m2m_changed.connect(signals.members_changed, sender=Room.members.through,
                            dispatch_uid="kasagi-room-members")

        runtime.install(
            directory=lambda conf: DatabaseDirectory(), persistence=database_persistence
        )
