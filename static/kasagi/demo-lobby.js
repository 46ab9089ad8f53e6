/**
 * The lobby (`/`): the rooms this user may see, from GET /api/rooms/
 * (PROTOCOL §10), refreshed every few seconds while the tab is visible;
 * joining by name; creating a room with POST /api/rooms/ (session cookie and
 * CSRF token); and this tab's player name and colour.
 *
 * @module kasagi/demo-lobby
 */

import { ID_PATTERN } from "./client.js";
import { bindProfileForm, loadProfile, tabStorage } from "./demo-profile.js";

const $ = (id) => document.getElementById(id);
const config = JSON.parse($("kasagi-config").textContent);
const csrfToken = document.querySelector('meta[name="csrf-token"]')?.getAttribute("content") ?? "";

/**
 * @param {string} roomId
 * @returns {string}
 */
function roomUrl(roomId) {
  return config.roomUrl.replace("{roomId}", encodeURIComponent(roomId));
}

/** A short random suffix: `a3k9`. */
function randomSuffix() {
  return Math.random().toString(36).slice(2, 6).padEnd(4, "0");
}

/**
 * A room id from a display name: "Friday game!" → "friday-game-x7k2".
 *
 * @param {string} name
 * @returns {string}
 */
function roomIdFromName(name) {
  const stem = name
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 48);
  return `${stem || "room"}-${randomSuffix()}`;
}

/* ---------------- profile and join ---------------- */

const storage = tabStorage();
bindProfileForm(
  { name: $("profile-name"), color: $("profile-color") },
  storage,
  loadProfile(storage, config.username),
);

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const roomId = $("join-room").value.trim();
  if (ID_PATTERN.test(roomId)) {
    window.location.assign(roomUrl(roomId));
  }
});
$("join-random").addEventListener("click", () => {
  window.location.assign(roomUrl(`room-${randomSuffix()}${randomSuffix()}`));
});

/* ---------------- the room list ---------------- */

const body = $("rooms-body");
const status = $("rooms-status");
const empty = $("rooms-empty");
const more = $("rooms-more");
let timer = null;

function cell(text, className) {
  const td = document.createElement("td");
  if (className) {
    td.className = className;
  }
  td.textContent = text;
  return td;
}

function link(text, href, className) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  if (className) {
    a.className = className;
  }
  return a;
}

/**
 * @param {any} room a room object of §10
 * @returns {HTMLTableRowElement}
 */
function roomRow(room) {
  const row = document.createElement("tr");
  row.dataset.roomId = room.roomId;
  const title = document.createElement("td");
  title.append(link(room.name || room.roomId, roomUrl(room.roomId)));
  if (room.name && room.name !== room.roomId) {
    const id = document.createElement("small");
    id.className = "muted room-id";
    id.textContent = room.roomId;
    title.append(" ", id);
  }
  const players = cell(
    room.maxPlayers ? `${room.playerCount} / ${room.maxPlayers}` : String(room.playerCount ?? 0),
    "num",
  );
  players.dataset.playerCount = String(room.playerCount ?? 0);
  const actions = document.createElement("td");
  actions.className = "actions";
  actions.append(link("Join", roomUrl(room.roomId), "button small"));
  if (config.isStaff) {
    const spectate = `${roomUrl(room.roomId)}?spectate=1`;
    actions.append(" ", link("Spectate", spectate, "button small secondary"));
  }
  row.append(
    title,
    cell(room.roomType ?? ""),
    cell(room.visibility ?? ""),
    players,
    cell(room.version == null ? "–" : String(room.version), "num"),
    actions,
  );
  return row;
}

async function refresh() {
  try {
    const response = await fetch(config.apiRooms, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (!response.ok) {
      throw new Error(`the room list answered ${response.status}`);
    }
    const page = await response.json();
    const rooms = Array.isArray(page.results) ? page.results : [];
    body.replaceChildren(...rooms.map(roomRow));
    empty.hidden = rooms.length > 0;
    const count = Number(page.count ?? rooms.length);
    more.hidden = count <= rooms.length;
    more.textContent = `…and ${count - rooms.length} more.`;
    status.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    status.classList.remove("error");
  } catch (error) {
    status.textContent = `Room list unavailable: ${error.message}`;
    status.classList.add("error");
  } finally {
    schedule();
  }
}

function schedule() {
  clearTimeout(timer);
  timer = document.hidden ? null : setTimeout(refresh, config.refreshMs);
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) {
    refresh();
  } else {
    clearTimeout(timer);
  }
});
refresh();

/* ---------------- create ---------------- */

/**
 * The messages of a DRF error body: `{"detail": "..."}` or `{"field": ["..."]}`.
 *
 * @param {any} body
 * @returns {string}
 */
function errorText(body) {
  if (!body || typeof body !== "object") {
    return "The room could not be created.";
  }
  if (typeof body.detail === "string") {
    return body.detail;
  }
  return Object.entries(body)
    .map(([field, messages]) => `${field}: ${[].concat(messages).join(" ")}`)
    .join("\n");
}

const createForm = $("create-form");
if (createForm) {
  const errorBox = $("create-error");
  createForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    const name = $("create-name").value.trim();
    const roomId = $("create-room-id").value.trim() || roomIdFromName(name);
    const max = $("create-max").value.trim();
    const room = {
      roomId,
      name,
      roomType: $("create-type").value,
      visibility: $("create-visibility").value,
      maxPlayers: max ? Number(max) : null,
    };
    const submit = createForm.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const response = await fetch(config.apiRooms, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          Accept: "application/json",
          "Content-Type": "application/json",
          "X-CSRFToken": csrfToken,
        },
        body: JSON.stringify(room),
      });
      const answer = await response.json().catch(() => null);
      if (response.status === 201) {
        window.location.assign(roomUrl(answer?.roomId ?? roomId));
        return;
      }
      errorBox.textContent = errorText(answer);
      errorBox.hidden = false;
    } catch (error) {
      errorBox.textContent = `The room could not be created: ${error.message}`;
      errorBox.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
}
