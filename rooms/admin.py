"""The Django admin for rooms: rows plus their live side.

The room list shows live player counts and versions (one call to the store
per page); the room page shows the live state, the players with a kick
button each, recent snapshots and a link to the spectator view. Live
actions (reset, close, kick) go through ``rooms.services``, the same
functions the REST API uses, and each asks for a confirmation first.
Player sessions are a read-only list.

History (§15): the room page lists its latest changes (who, when, what, as a
readable diff), each with the room's state at that version and a restore
button (a live action with its confirmation); the change list (read-only)
filters the changes of one user across rooms.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import F, QuerySet, Window
from django.db.models.functions import RowNumber
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import ngettext

from sync.core.envelope import ID_PATTERN
from sync.core.errors import ErrorCode, ProtocolError

from . import documents, history, selectors, services
from .models import ChangeKind, ChangeSource, PlayerSession, Room, RoomChange, RoomSnapshot

#: Snapshots shown on a room's page.
RECENT_SNAPSHOTS = 10
#: History records shown on a room's page (the change list has them all).
RECENT_CHANGES = 50
#: Lines of a record's readable diff before it is cut.
DIFF_LINES = 8
#: Characters of pretty-printed state shown before it is cut.
STATE_PREVIEW_CHARS = 200_000
USERNAME_LOOKUP = f"user__{get_user_model().USERNAME_FIELD}"
OWNER_LOOKUP = f"owner__{get_user_model().USERNAME_FIELD}"
#: the query of the change list's "changes by this user" filter
USER_FILTER = f"user__{get_user_model()._meta.pk.name}__exact"


class OpenFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("open", "Open"), ("closed", "Closed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Room]) -> QuerySet[Room]:
        if self.value() == "open":
            return queryset.filter(closed_at__isnull=True)
        if self.value() == "closed":
            return queryset.filter(closed_at__isnull=False)
        return queryset


class LiveChangeList(ChangeList):
    """Fetches the page's live numbers in one call and hangs them on the rows."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        rows = list(self.result_list)  # evaluates (and caches) the page's queryset
        live = selectors.rooms_live(rows)
        for room in rows:
            room.live_numbers = live.get(room.room_id)


class RecentSnapshotInline(admin.TabularInline):
    model = RoomSnapshot
    verbose_name_plural = f"recent snapshots (latest {RECENT_SNAPSHOTS})"
    fields = ("version", "created_at", "players", "entities", "size")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[RoomSnapshot]:
        ranked = super().get_queryset(request).annotate(
            rank=Window(RowNumber(), partition_by=F("room"), order_by=F("version").desc())
        )
        return ranked.filter(rank__lte=RECENT_SNAPSHOTS).order_by("-version")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="players")
    def players(self, snapshot: RoomSnapshot) -> int:
        return len((snapshot.state or {}).get("players") or {})

    @admin.display(description="entities")
    def entities(self, snapshot: RoomSnapshot) -> int:
        return len((snapshot.state or {}).get("entities") or {})

    @admin.display(description="size (bytes)")
    def size(self, snapshot: RoomSnapshot) -> int:
        return len(json.dumps(snapshot.state, separators=(",", ":")))


class RoomForm(forms.ModelForm):
    class Meta:
        model = Room
        fields = "__all__"

    def clean_room_id(self) -> str:
        # The model's validator searches; a roomId must match as a whole (§2).
        room_id = self.cleaned_data["room_id"]
        if not ID_PATTERN.fullmatch(room_id):
            raise forms.ValidationError("1–64 characters of A–Z a–z 0–9 _ . - only")
        return room_id


def _reset(room: Room, by: Any) -> str:
    version = services.room_reset(room=room, by=by)
    at = f" (version {version})" if version is not None else ""  # None: after the commit
    return f"Room {room.room_id} was reset{at}."


def _close(room: Room, by: Any) -> str:
    services.room_close(room=room, by=by)
    return f"Room {room.room_id} was closed."


@dataclass(frozen=True, slots=True)
class LiveAction:
    """A live action on one room that takes no input: its page and what it does."""

    #: does it (room, by), returns what to tell the operator; ProtocolError: refused
    run: Callable[[Room, Any], str]
    log: str
    refused: str
    title: str
    text: str
    button: str


LIVE_ACTIONS = {
    "reset": LiveAction(
        _reset, log="Reset the live state.", refused="Not reset", title="Reset {room}?",
        text="Entities are removed and every player goes back to the state it joined with. "
             "Members receive the change as a DELTA_UPDATE.",
        button="Yes, reset the state",
    ),
    "close": LiveAction(
        _close, log="Closed the room.", refused="Not closed", title="Close {room}?",
        text="Every player receives PLAYER_LEFT (closed), then ROOM_CLOSED on its next room "
             "message. Nobody can join the room again.",
        button="Yes, close the room",
    ),
}


class RestoreForm(forms.Form):
    version = forms.IntegerField(label="Version", min_value=0)


class AnnounceForm(forms.Form):
    text = forms.CharField(label="Announcement", max_length=500, widget=forms.Textarea(
        attrs={"rows": 3, "cols": 60}))


class DocumentForm(forms.Form):
    doc_id = forms.RegexField(label="Document", regex=rf"^{ID_PATTERN.pattern}$", max_length=64)


def _announce(room: Room, data: dict[str, Any], by: Any) -> str:
    services.room_announce(room=room, text=data["text"], by=by)
    return "The announcement was sent to the room's members."


def _restore(room: Room, data: dict[str, Any], by: Any) -> str:
    version = data["version"]
    if history.room_state_at(room=room, version=version) is None:
        raise ProtocolError(ErrorCode.INVALID_UPDATE,
                            f"version {version} is not in the kept history.")
    new = services.room_restore(room=room, version=version, by=by)
    return f"Room {room.room_id} was set back to version {version} (now version {new})."


def _clear_document(room: Room, data: dict[str, Any], by: Any) -> str:
    services.document_clear(room=room, doc_id=data["doc_id"], by=by)
    return f"Document {data['doc_id']} of room {room.room_id} was cleared."


@dataclass(frozen=True, slots=True)
class FormAction:
    """A live action on one room that takes a small form: its page and what it does."""

    form: type[forms.Form]
    #: does it (room, cleaned data, by), returns what to tell the operator; ProtocolError:
    #: refused
    run: Callable[[Room, dict[str, Any], Any], str]
    #: the change-log line, from the cleaned data
    log: Callable[[dict[str, Any]], str]
    refused: str
    title: str
    text: str
    button: str
    #: (form field, query parameter) prefilled from the link that opened the page
    prefill: tuple[str, str] | None = None


FORM_ACTIONS = {
    "announce": FormAction(
        AnnounceForm, _announce, log=lambda data: "Sent an announcement.", refused="Not sent",
        title="Announce in {room}",
        text="Every member receives EVENT announcement with this text (not state: "
             "players who join later or are reconnecting do not get it).",
        button="Send",
    ),
    "restore": FormAction(
        RestoreForm, _restore, log=lambda data: f"Restored the state of version {data['version']}.",
        refused="Not restored", title="Restore {room}?",
        text="Entities, and the fields of the players present both now and at that "
             "version, go back to it as one new change; nobody is added or removed. "
             "Members receive it as a DELTA_UPDATE.",
        button="Yes, restore this version", prefill=("version", "version"),
    ),
    "clear_document": FormAction(
        DocumentForm, _clear_document, log=lambda data: f"Cleared document {data['doc_id']}.",
        refused="Not cleared", title="Clear a document of {room}?",
        text="The server forgets the document's content, live and saved. Members who "
             "are connected keep their copy and may send it back on their next sync: "
             "clear a document nobody is editing.",
        button="Yes, clear the document", prefill=("doc_id", "doc"),
    ),
}


class KickForm(forms.Form):
    player_id = forms.ChoiceField(label="Player")

    def __init__(self, *args: Any, players: dict[str, dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["player_id"].choices = [
            (player_id, _player_label(player_id, state)) for player_id, state in players.items()
        ]


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = (
        "room_id", "name", "room_type", "visibility", "live_players", "live_version",
        "last_activity_at", "owner", "is_open_display",
    )
    list_filter = ("room_type", "visibility", OpenFilter, "created_at")
    search_fields = ("room_id", "name", OWNER_LOOKUP)
    raw_id_fields = ("owner", "members")
    date_hierarchy = "created_at"
    inlines = [RecentSnapshotInline]
    actions = ["reset_state", "close_rooms", "kick_player"]
    change_form_template = "admin/rooms/room/change_form.html"
    form = RoomForm

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return LiveChangeList

    def get_queryset(self, request: HttpRequest) -> QuerySet[Room]:
        return super().get_queryset(request).select_related("owner")

    def get_fieldsets(self, request: HttpRequest, obj: Room | None = None) -> Any:
        room = ("room_id", "name", "room_type", "visibility", "max_players", "owner", "members")
        if obj is None:
            return [(None, {"fields": room})]
        return [
            (None, {"fields": room}),
            ("Live", {"fields": ("live_summary", "live_players_table", "live_state")}),
            ("History", {"fields": ("history_table",)}),
            ("Documents", {"fields": ("documents_table",)}),
            ("Times", {"fields": ("created_at", "last_activity_at", "closed_at")}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Room | None = None) -> Any:
        if obj is None:
            return ()
        return (
            "room_id", "live_summary", "live_players_table", "live_state", "history_table",
            "documents_table",
            "created_at", "last_activity_at", "closed_at",
        )

    # -- columns ---------------------------------------------------------

    @admin.display(description="players")
    def live_players(self, room: Room) -> str:
        return _live_number(room, "player_count")

    @admin.display(description="version")
    def live_version(self, room: Room) -> str:
        return _live_number(room, "version")

    @admin.display(description="open", boolean=True, ordering="closed_at")
    def is_open_display(self, room: Room) -> bool:
        return room.is_open

    # -- the room page ---------------------------------------------------

    def _state(self, room: Room) -> selectors.RoomStateView:
        cached = getattr(room, "_state_view", None)
        if cached is None:
            cached = room._state_view = selectors.room_state_or_snapshot(room)
        return cached

    @admin.display(description="now")
    def live_summary(self, room: Room) -> str:
        view = self._state(room)
        where = "live" if view.loaded else "not loaded (from its latest snapshot)"
        players = len(view.state.get("players") or {})
        entities = len(view.state.get("entities") or {})
        return format_html(
            "version <strong>{}</strong> · {} players · {} entities · {}",
            view.version, players, entities, where,
        )

    @admin.display(description="players")
    def live_players_table(self, room: Room) -> str:
        view = self._state(room)
        players = view.state.get("players") or {}
        if not players:
            return "No players."
        kick = self._url(room, "kick")
        rows = format_html_join(
            "",
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    player_id,
                    _player_label(player_id, state),
                    _connection_label(view, player_id),
                    format_html('<a class="button" href="{}?player={}">Kick…</a>', kick, player_id)
                    if view.loaded and room.is_open else "",
                )
                for player_id, state in sorted(players.items())
            ),
        )
        return format_html(
            "<table><thead><tr><th>playerId</th><th>player</th><th>socket</th><th></th></tr>"
            "</thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="state")
    def live_state(self, room: Room) -> str:
        text = json.dumps(self._state(room).state, indent=2, sort_keys=True, ensure_ascii=False)
        if len(text) > STATE_PREVIEW_CHARS:
            text = text[:STATE_PREVIEW_CHARS] + "\n… (cut)"
        return format_html(
            '<pre style="max-height:32em;overflow:auto;white-space:pre-wrap">{}</pre>', text
        )

    @admin.display(description=f"latest changes (up to {RECENT_CHANGES})")
    def history_table(self, room: Room) -> str:
        records = history.recent_records(room.pk, RECENT_CHANGES)
        if not records:
            return "No recorded change (KASAGI_HISTORY off, or none yet)."
        state_url, restore_url = self._url(room, "state_at"), self._url(room, "restore")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><pre style=\"margin:0;"
            "white-space:pre-wrap\">{}</pre></td><td>{}</td></tr>",
            (
                (
                    record.version,
                    _time_label(record.timestamp),
                    _author_label(record),
                    ChangeKind(record.kind).label,
                    "\n".join(readable_diff(record.patch)),
                    format_html(
                        '<a href="{}?version={}">state</a> · '
                        '<a class="button" href="{}?version={}">Restore…</a>',
                        state_url, record.version, restore_url, record.version,
                    ) if room.is_open else format_html(
                        '<a href="{}?version={}">state</a>', state_url, record.version),
                )
                for record in records
            ),
        )
        return format_html(
            "<table><thead><tr><th>version</th><th>time (UTC)</th><th>who</th><th>kind</th>"
            "<th>change</th><th></th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="documents (§16), as last saved")
    def documents_table(self, room: Room) -> str:
        infos = documents.room_documents(room)
        if not infos:
            return "No document."
        clear_url = self._url(room, "clear_document")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><pre style=\"margin:0;"
            "white-space:pre-wrap\">{}</pre></td><td>{}</td></tr>",
            (
                (
                    info.doc_id,
                    f"{info.size:,} bytes",
                    info.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
                    "\n".join(f"{root}: {text}" for root, text in info.preview.items())
                    or "(no text)",
                    format_html('<a class="button" href="{}?doc={}">Clear…</a>',
                                clear_url, info.doc_id) if room.is_open else "",
                )
                for info in infos
            ),
        )
        return format_html(
            "<table><thead><tr><th>document</th><th>size</th><th>saved (UTC)</th>"
            "<th>text</th><th></th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        room = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if room is not None:
            extra.update(
                spectate_url=_spectate_url(room),
                live_actions=room.is_open and self.has_change_permission(request, room),
                reset_url=self._url(room, "reset"),
                close_url=self._url(room, "close"),
                kick_url=self._url(room, "kick"),
                announce_url=self._url(room, "announce"),
                state_at_url=self._url(room, "state_at"),
                restore_url=self._url(room, "restore"),
            )
        return super().change_view(request, object_id, form_url, extra)

    # -- live actions on one room ----------------------------------------

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            *(
                path(f"<path:object_id>/live/{key}/", wrap(self.live_action_view),
                     {"action": action}, name=f"{name}_{key}")
                for key, action in LIVE_ACTIONS.items()
            ),
            path("<path:object_id>/live/kick/", wrap(self.kick_view), name=f"{name}_kick"),
            *(
                path(f"<path:object_id>/live/{key.replace('_', '-')}/",
                     wrap(self.form_action_view), {"action": action}, name=f"{name}_{key}")
                for key, action in FORM_ACTIONS.items()
            ),
            path("<path:object_id>/history/state/", wrap(self.state_at_view),
                 name=f"{name}_state_at"),
            *super().get_urls(),
        ]

    def live_action_view(
        self, request: HttpRequest, object_id: str, action: LiveAction
    ) -> HttpResponse:
        """Reset or close one room: a confirmation page, then the POST that does it."""
        room = self._room_for_action(request, object_id)
        if request.method == "POST":
            return self._perform(request, room, lambda: action.run(room, request.user),
                                 log=action.log, refused=action.refused)
        return self._confirm(request, room, title=action.title.format(room=room.room_id),
                             text=action.text, button=action.button)

    def kick_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        room = self._room_for_action(request, object_id)
        players = self._state(room).state.get("players") or {}
        if request.method == "POST":
            player_id = request.POST.get("player_id", "")
            if not ID_PATTERN.fullmatch(player_id):
                self.message_user(request, "Choose a player to kick.", messages.ERROR)
                return self._back_to(room)

            def kick() -> str:
                services.room_kick_player(room=room, player_id=player_id, by=request.user)
                return f"Player {player_id} was kicked."

            return self._perform(request, room, kick, log=f"Kicked player {player_id}.",
                                 refused="Not kicked")
        form = KickForm(initial={"player_id": request.GET.get("player")}, players=players)
        return self._confirm(
            request, room, title=f"Kick a player from {room.room_id}",
            text="The player is removed at once; everybody receives PLAYER_LEFT (kicked).",
            button="Kick", form=form, empty=not players,
        )

    def form_action_view(
        self, request: HttpRequest, object_id: str, action: FormAction
    ) -> HttpResponse:
        """Announce, restore, clear a document: a form page, then the POST that does it."""
        room = self._room_for_action(request, object_id)
        initial = None
        if action.prefill is not None:
            initial = {action.prefill[0]: request.GET.get(action.prefill[1])}
        form = action.form(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            return self._perform(request, room, lambda: action.run(room, data, request.user),
                                 log=action.log(data), refused=action.refused)
        return self._confirm(request, room, title=action.title.format(room=room.room_id),
                             text=action.text, button=action.button, form=form)

    def state_at_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The room's whole state right after a version, from its history (staff see
        private fields)."""
        room = get_object_or_404(Room, pk=object_id)
        if not self.has_view_permission(request, room):
            raise PermissionDenied
        form = RestoreForm(request.GET or None)
        version = form.cleaned_data["version"] if form.is_valid() else None
        state = history.room_state_at(room=room, version=version) if version is not None else None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": room,
            "title": f"{room.room_id} at version {version}" if version is not None
            else f"{room.room_id}: state at a version",
            "form": form,
            "version": version,
            "found": state is not None,
            "state": json.dumps(state, indent=2, sort_keys=True, ensure_ascii=False)
            if state is not None else "",
            "change_url": self._url(room, "change"),
            "restore_url": self._url(room, "restore")
            if room.is_open and self.has_change_permission(request, room) else None,
        }
        return TemplateResponse(request, "admin/rooms/room/state_at.html", context)

    def _perform(
        self, request: HttpRequest, room: Room, action: Callable[[], str], *, log: str,
        refused: str,
    ) -> HttpResponseRedirect:
        """The confirmed POST of a live action: run it (it returns what to tell the
        operator), log it on the room, and go back to the room's page."""
        try:
            done = action()
        except ProtocolError as exc:
            self.message_user(request, f"{refused}: {exc.message}", messages.ERROR)
        else:
            self.log_change(request, room, log)
            self.message_user(request, done)
        return self._back_to(room)

    def _room_for_action(self, request: HttpRequest, object_id: str) -> Room:
        room = get_object_or_404(Room, pk=object_id)
        if not self.has_change_permission(request, room):
            raise PermissionDenied
        return room

    def _confirm(
        self, request: HttpRequest, room: Room, *, title: str, text: str, button: str,
        form: forms.Form | None = None, empty: bool = False,
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": room,
            "title": title,
            "text": text,
            "button": button,
            "form": form,
            "empty": empty,
            "change_url": self._url(room, "change"),
        }
        return TemplateResponse(request, "admin/rooms/room/live_action.html", context)

    def _url(self, room: Room, action: str) -> str:
        name = f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_{action}"
        return reverse(name, args=[room.pk])

    def _back_to(self, room: Room) -> HttpResponseRedirect:
        return HttpResponseRedirect(self._url(room, "change"))

    # -- bulk actions from the list --------------------------------------

    @admin.action(description="Reset the live state of the selected rooms")
    def reset_state(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        done = 0
        for room in queryset:
            try:
                services.room_reset(room=room, by=request.user)
            except ProtocolError as exc:
                self.message_user(request, f"{room.room_id}: {exc.message}", messages.ERROR)
            else:
                self.log_change(request, room, "Reset the live state.")
                done += 1
        if done:
            self.message_user(request, ngettext("%d room reset.", "%d rooms reset.", done) % done)

    @admin.action(description="Close the selected rooms…")
    def close_rooms(self, request: HttpRequest, queryset: QuerySet[Room]) -> Any:
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Close the selected rooms?",
                "rooms": list(queryset),
                "action": "close_rooms",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(
                request, "admin/rooms/room/close_selected_confirmation.html", context
            )
        for room in queryset:
            services.room_close(room=room, by=request.user)
            self.log_change(request, room, "Closed the room.")
        count = queryset.count()
        self.message_user(request, ngettext("%d room closed.", "%d rooms closed.", count) % count)
        return None

    @admin.action(description="Kick a player from the selected room…")
    def kick_player(self, request: HttpRequest, queryset: QuerySet[Room]) -> Any:
        rooms = list(queryset[:2])
        if len(rooms) != 1:
            self.message_user(request, "Select exactly one room to kick from.", messages.WARNING)
            return None
        return HttpResponseRedirect(self._url(rooms[0], "kick"))

    # -- deleting rows of live rooms -------------------------------------

    # The admin deletes inside a transaction: room_close closes the live room once it
    # commits, so a delete that fails leaves the room open, row and live room alike.

    def delete_model(self, request: HttpRequest, obj: Room) -> None:
        services.room_close(room=obj, by=request.user)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        for room in queryset:
            services.room_close(room=room, by=request.user)
        super().delete_queryset(request, queryset)


@admin.register(PlayerSession)
class PlayerSessionAdmin(admin.ModelAdmin):
    """Read-only: sessions are written by the engine's background writer."""

    list_display = (
        "player_id", "room", "user", "created_at", "last_seen_at", "disconnected_at",
        "ended_at", "end_reason",
    )
    list_filter = ("end_reason", ("ended_at", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("player_id", "room__room_id", USERNAME_LOOKUP)
    list_select_related = ("room", "user")
    exclude = ("token_hash",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ChangesByUserFilter(admin.RelatedOnlyFieldListFilter):
    """The users who made kept changes: pick one for its changes across rooms."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Django's related-field filters set their title from the field in __init__ (a
        # class attribute is overwritten), so the sidebar said "By user".
        self.title = "changes by this user"


@admin.register(RoomChange)
class RoomChangeAdmin(admin.ModelAdmin):
    """The changes made by logged-in users, across rooms (the per-user index of §15's
    history; a room's whole history is on its page). Read-only: the engine's
    background writer writes it."""

    list_display = ("room", "version", "time", "who", "kind", "source", "change")
    list_filter = (("user", ChangesByUserFilter), "kind", "source")
    search_fields = ("room__room_id", "username", "player_id")
    list_select_related = ("room", "user")
    ordering = ("-timestamp", "-version")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="time (UTC)", ordering="timestamp")
    def time(self, record: RoomChange) -> str:
        return _time_label(record.timestamp)

    @admin.display(description="who")
    def who(self, record: RoomChange) -> str:
        return _author_label(record)

    @admin.display(description="change")
    def change(self, record: RoomChange) -> str:
        return format_html('<pre style="margin:0;white-space:pre-wrap">{}</pre>',
                           "\n".join(readable_diff(record.patch)))


# -- helpers ------------------------------------------------------------------


def readable_diff(patch: dict[str, Any], limit: int = DIFF_LINES) -> list[str]:
    """A record's merge patch as lines a person reads: ``entity doc: text = "hi"``,
    ``player p-1 removed``; at most ``limit`` lines."""
    lines: list[str] = []

    def leaves(prefix: str, value: Any) -> None:
        if type(value) is dict and value:
            for key, sub in value.items():
                leaves(f"{prefix}.{key}" if prefix else key, sub)
        elif value is None:
            lines.append(f"{prefix} removed")
        else:
            lines.append(f"{prefix} = {json.dumps(value, ensure_ascii=False)}")

    for table, label in (("players", "player"), ("entities", "entity")):
        for name, sub in (patch.get(table) or {}).items():
            if sub is None:
                lines.append(f"{label} {name} removed")
            elif type(sub) is dict and sub:
                before = len(lines)
                leaves("", sub)
                lines[before:] = [f"{label} {name}: {line}" for line in lines[before:]]
            else:
                lines.append(f"{label} {name} = {json.dumps(sub, ensure_ascii=False)}")
    if not lines:
        return ["(nothing visible)"]
    if len(lines) > limit:
        return [*lines[:limit], f"… {len(lines) - limit} more"]
    return lines


def _time_label(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _author_label(record: RoomChange | history.Record) -> str:
    """Who made a change: its user (linked to all their changes), else its source."""
    if record.user_id is not None:
        url = reverse("admin:rooms_roomchange_changelist") + f"?{USER_FILTER}={record.user_id}"
        return format_html('<a href="{}" title="changes by this user">{}</a> ({})',
                           url, record.username or record.user_id, record.source)
    if record.username:
        return f"{record.username} ({record.source})"
    if record.player_id and record.source == "player":
        return f"player {record.player_id}"
    return str(ChangeSource(record.source).label)



def _live_number(room: Room, field: str) -> str:
    numbers = getattr(room, "live_numbers", None)  # hung on by LiveChangeList
    if numbers is None:
        return "–"
    value = getattr(numbers, field)
    if numbers.loaded:
        return str(value)
    return format_html('<span title="from the latest snapshot">{} <small>(saved)</small></span>',
                       value)


def _player_label(player_id: str, state: dict[str, Any]) -> str:
    name = state.get("username") or state.get("playerName") or ""
    return f"{name} ({player_id})" if name else player_id


def _connection_label(view: selectors.RoomStateView, player_id: str) -> str:
    if not view.loaded:
        return "–"
    connected = view.connected.get(player_id)
    if connected is None:
        return "–"
    return "connected" if connected else "in grace period"


def _spectate_url(room: Room) -> str | None:
    try:
        return reverse("rooms:room", args=[room.room_id]) + "?spectate=1"
    except NoReverseMatch:  # a host site without the demo pages
        return None
