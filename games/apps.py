from django.apps import AppConfig


class GamesConfig(AppConfig):
    """A site's own room types live in an app like this one: importing the module
    registers them (``@register``), so ``ready`` is all the wiring there is."""

    name = "games"
    verbose_name = "Example games"

    def ready(self) -> None:
        from . import room_types  # noqa: F401  (registers the room types)
