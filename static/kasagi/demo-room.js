/**
 * The room page (`/rooms/<roomId>/`): the arena demo on top of the Kasagi
 * client. Your dot walks towards the pointer (or the arrow keys) at a speed
 * under the arena's limit; one STATE_UPDATE at most per server tick carries
 * the position and the pointer cursor. The shared note is the room's Yjs
 * document `note` (§16, `demo-note.js`); its text cursors travel as
 * `doc.cursor` events. Other players are drawn from the client's
 * state mirror, interpolated between the deltas. With `?spectate=1` the page
 * joins as a spectator and only watches.
 *
 * The arena game (§12): the server's coins are drawn on the canvas, the
 * players' server-owned `score` fills the scoreboard, EVENT `coin.taken`
 * shows a toast; keys 1–5 (or the buttons) send MESSAGE `emote`, which the
 * room relays to the others as EVENT `emote`: a bubble over the sender's dot.
 *
 * `window.kasagiDemo` exposes the client and the local position, for the
 * browser tests and for poking at it from the console.
 *
 * @module kasagi/demo-room
 */

import { connect } from "./client.js";
import { ArenaView } from "./demo-arena.js";
import {
  COIN_TAKEN,
  EMOTE_KIND,
  coinTakenText,
  coinsOf,
  emoteForKey,
  emoteOf,
} from "./demo-game.js";
import { GameView } from "./demo-game-view.js";
import {
  Interpolator,
  KEY_DIRECTIONS,
  clampPoint,
  moveTick,
} from "./demo-motion.js";
import { CURSOR_KIND, SharedNote } from "./demo-note.js";
import { createPanel } from "./demo-panel.js";
import { bindProfileForm, loadProfile, tabStorage } from "./demo-profile.js";

const PANEL_MS = 250;
const PING_MS = 2000;

const $ = (id) => document.getElementById(id);
const config = JSON.parse($("kasagi-config").textContent);
const spectate = Boolean(config.spectate);
const size = Number(config.arenaSize) || 1000;
const tickMs = Math.max(Number(config.tickMs) || 50, 16);
/** the longest step one tick may take: the page's speed, under the room type's limit */
const maxStep = (Number(config.speed) * tickMs) / 1000;

const root = $("demo");
const badge = $("status-badge");
const banner = $("banner");
const storage = tabStorage();
let profile = spectate ? null : loadProfile(storage, config.username);

const client = connect(config.wsPath);
const arena = new ArenaView(/** @type {HTMLCanvasElement} */ ($("arena")), size);
const interpolator = new Interpolator({ delayMs: 2 * tickMs, stepMs: tickMs });
const note = new SharedNote(
  { textarea: $("note"), backdrop: $("note-backdrop"), meta: $("note-meta") },
  { readOnly: spectate, client },
);
const panel = createPanel(client, { spectate });
const game = new GameView(
  {
    scores: $("scores"),
    scoreList: /** @type {HTMLOListElement} */ ($("scoreboard")),
    bubbles: $("bubbles"),
    toasts: $("toasts"),
    emotes: $("emotes"),
  },
  { size, alwaysScores: config.roomType === "arena", onEmote: sendEmote },
);
/** requestIds of the emotes sent: their refusals are not about our position */
const emoteRequests = new Set();

/**
 * Send an emote to the others (MESSAGE `emote`) and show it over our own dot
 * at once: the sender receives nothing back (§11).
 *
 * @param {string} emoji
 */
function sendEmote(emoji) {
  if (spectate || !client.playerId) {
    return;
  }
  try {
    emoteRequests.add(client.sendMessage(EMOTE_KIND, { emoji }));
  } catch {
    return; // not in the room right now (reconnecting): an emote is not worth queueing
  }
  if (emoteRequests.size > 50) {
    emoteRequests.delete(emoteRequests.values().next().value);
  }
  game.bubbles.show(client.playerId, emoji, performance.now());
}

/* ---------------- local player ---------------- */

/** @type {{x: number, y: number} | null} where this page draws its own dot */
let position = null;
/** @type {{x: number, y: number} | null} where the dot walks to */
let target = null;
/** @type {{x: number, y: number} | null} the pointer over the arena */
let cursor = null;
let profileChanged = false;
/** the values of the fields last sent, to send only what changed */
let sent = {};
const keys = new Set();

function randomSpot() {
  const margin = size * 0.1;
  return {
    x: Math.round(margin + Math.random() * (size - 2 * margin)),
    y: Math.round(margin + Math.random() * (size - 2 * margin)),
  };
}

function me() {
  return client.playerId && client.state ? client.state.players?.[client.playerId] : null;
}

/** Take the server's view of this player (after a join, a resume or a refused move). */
function adoptServerPlayer() {
  const player = me();
  if (!player) {
    return;
  }
  const at = Number.isFinite(player.x) && Number.isFinite(player.y)
    ? { x: player.x, y: player.y }
    : randomSpot();
  position = { ...at };
  target = { ...at };
  sent = { x: player.x, y: player.y, cursor: JSON.stringify(player.cursor ?? null) };
  note.caretUnknown();
}

/** Once a tick: move, then send what changed (one player update, the note's cursor). */
function tick() {
  if (spectate || !client.playerId || !client.roomId || !position) {
    return;
  }
  let patch;
  ({ position, target, patch } = moveTick({ position, target, keys, maxStep, size, sent }));
  const pointer = cursor ? { x: Math.round(cursor.x), y: Math.round(cursor.y) } : null;
  if (JSON.stringify(pointer) !== sent.cursor) {
    patch.cursor = pointer;
  }
  const caret = note.takeCaret();
  if (caret !== undefined && client.synced) {
    client.sendMessage(CURSOR_KIND, caret); // presence: an event, not state
  }
  if (profileChanged) {
    patch.playerName = profile.playerName;
    patch.color = profile.color;
    profileChanged = false;
  }
  if (Object.keys(patch).length > 0) {
    client.update(patch);
    sent = { ...sent, ...patch, cursor: JSON.stringify(pointer) };
  }
}

/* ---------------- input ---------------- */

const canvas = arena.canvas;
if (!spectate) {
  canvas.addEventListener("pointermove", (event) => {
    cursor = arena.toArena(event);
    if (event.pointerType === "mouse" || event.buttons !== 0) {
      target = cursor;
    }
  });
  canvas.addEventListener("pointerdown", (event) => {
    canvas.focus({ preventScroll: true });
    cursor = arena.toArena(event);
    target = cursor;
  });
  canvas.addEventListener("pointerleave", () => {
    cursor = null;
  });
  const typing = (event) =>
    event.target instanceof HTMLElement &&
    (event.target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName));
  window.addEventListener("keydown", (event) => {
    if (typing(event) || event.altKey || event.ctrlKey || event.metaKey) {
      return;
    }
    if (event.code in KEY_DIRECTIONS) {
      keys.add(event.code);
      event.preventDefault();
      return;
    }
    const emoji = emoteForKey(event.code);
    if (emoji && !event.repeat) {
      sendEmote(emoji);
      event.preventDefault();
    }
  });
  window.addEventListener("keyup", (event) => keys.delete(event.code));
  window.addEventListener("blur", () => keys.clear());
  bindProfileForm({ name: $("profile-name"), color: $("profile-color") }, storage, profile, (p) => {
    profile = p;
    profileChanged = true;
  });
  $("leave").addEventListener("click", () => {
    client.leave();
    window.location.assign(config.lobbyUrl);
  });
}

/* ---------------- server → page ---------------- */

function showBanner(text) {
  banner.textContent = text;
  banner.hidden = !text;
}

const REFUSALS = {
  FORBIDDEN: "You may not join this room. Log in with an account that may, then reload.",
  ROOM_FULL: "The room is full. Try again later.",
  ROOM_CLOSED: "This room was closed by an administrator.",
  ROOM_NOT_FOUND: "This room does not exist.",
};

client.on("status", ({ status, delayMs }) => {
  badge.textContent = status === "reconnecting" && delayMs != null
    ? `reconnecting in ${(delayMs / 1000).toFixed(1)} s`
    : status;
  badge.dataset.status = status;
  root.dataset.state = status;
});

client.on("state", ({ state, type }) => {
  const now = performance.now();
  const players = state.players ?? {};
  const self = client.playerId;
  for (const [id, player] of Object.entries(players)) {
    if (id !== self && Number.isFinite(player?.x) && Number.isFinite(player?.y)) {
      interpolator.push(id, { x: player.x, y: player.y }, now);
    }
  }
  if (type === "PLAYER_LEFT" || type === "FULL_STATE") {
    interpolator.retain(Object.keys(players));
  }
  note.renderCarets(players, self);
  game.renderScores(players, self);
});

client.on("event", ({ kind, data, from }) => {
  const now = performance.now();
  if (kind === EMOTE_KIND) {
    const emoji = emoteOf(data);
    if (emoji && from) {
      game.bubbles.show(from, emoji, now);
    }
  } else if (kind === CURSOR_KIND) {
    note.onCursor(from, data);
  } else if (kind === COIN_TAKEN) {
    // the change that took the coin is already in the mirror (§11 order)
    const text = coinTakenText(data, client.state?.players, client.playerId);
    if (text) {
      game.toast(text, now);
    }
  }
});

client.on("joined", ({ self, resumed }) => {
  if (!self) {
    return;
  }
  showBanner("");
  root.dataset.playerId = client.playerId ?? "";
  root.dataset.resumed = String(Boolean(resumed));
  note.caretUnknown(); // the note itself syncs on every join (KasagiDoc)
  if (position === null || !resumed) {
    adoptServerPlayer();
  }
  // else a resume after a drop: the updates queued meanwhile bring the server to us
});

client.on("left", ({ self, reason, error }) => {
  if (!self) {
    return;
  }
  position = null;
  root.dataset.playerId = "";
  if (reason !== "left") {
    const why = `You are no longer in the room (${reason}). Reload to join again.`;
    showBanner(REFUSALS[error?.code] ?? why);
  }
});

client.on("error", (error) => {
  if (emoteRequests.has(error.requestId)) {
    return; // an emote refused (rate limit...): nothing to repair
  }
  if (error.code === "PAYLOAD_TOO_LARGE" && note.binding.synced) {
    showBanner("The shared note has reached the room's size limit: new typing is not saved.");
  } else if (error.code === "INVALID_UPDATE" || error.code === "RATE_LIMITED") {
    adoptServerPlayer(); // the server kept its own idea of us: walk on from there
  }
});

const fields = spectate
  ? { spectate: true }
  : { playerName: profile.playerName, color: profile.color, ...randomSpot() };
const joined = client.join(config.roomId, fields).catch((error) => {
  showBanner(REFUSALS[error.code] ?? `Could not join: ${error.message}`);
  throw error;
});
joined.catch(() => {});

/* ---------------- loops ---------------- */

function frame(now) {
  const players = client.state?.players ?? {};
  const self = client.playerId;
  const figures = [];
  /** @type {Map<string, {x: number, y: number}>} where each dot is drawn, for the bubbles */
  const drawnAt = new Map();
  for (const [id, player] of Object.entries(players)) {
    const name = String(player?.playerName ?? id);
    const color = typeof player?.color === "string" ? player.color : "#888888";
    const pointer = player?.cursor && Number.isFinite(player.cursor.x) ? player.cursor : null;
    if (id === self) {
      if (position) {
        const confirmed = Number.isFinite(player.x) ? { x: player.x, y: player.y } : null;
        figures.push({ id, name, color, at: position, self: true, confirmed });
        drawnAt.set(id, position);
      }
      continue;
    }
    const at = interpolator.sample(id, now);
    if (at) {
      figures.push({ id, name, color, at, cursor: pointer });
      drawnAt.set(id, at);
    }
  }
  arena.draw(figures, coinsOf(client.state?.entities));
  game.renderBubbles(drawnAt, now);
  game.renderToasts(now);
  requestAnimationFrame(frame);
}

if (matchMedia("(max-width: 900px)").matches) {
  for (const section of document.querySelectorAll("details[data-narrow-closed]")) {
    section.open = false;
  }
}

// a chain of timeouts, not setInterval: an interval shortens the next period
// after a late run to keep its cadence, which would send faster than the tick
function tickLoop() {
  tick();
  setTimeout(tickLoop, tickMs);
}
setTimeout(tickLoop, tickMs);
setInterval(() => panel.render(), PANEL_MS);
setInterval(() => {
  if (client.status === "open") {
    client.ping().catch(() => {});
  }
}, PING_MS);
client.on("status", ({ status }) => {
  if (status === "open") {
    client.ping().catch(() => {});
  }
});
requestAnimationFrame(frame);
panel.render();

window.kasagiDemo = {
  client,
  config,
  joined,
  note,
  game,
  /** The emote bubbles showing now, by playerId. */
  bubbles() {
    return Object.fromEntries(game.bubbles.active(performance.now()));
  },
  sendEmote,
  get position() {
    return position && { ...position };
  },
  get target() {
    return target && { ...target };
  },
  /** Walk to a point of the arena, as the pointer would. */
  moveTo(x, y) {
    target = clampPoint({ x, y }, size);
  },
};
