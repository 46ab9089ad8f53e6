/**
 * The world page (`/world/<roomId>/`): a `world` room (§13, interest
 * management) on top of the Kasagi client. The world is 10,000 units square;
 * the map is a viewport that follows your dot. The server sends each member
 * only the players near it (the 3 × 3 grid cells around its own), so the
 * client's state mirror *is* the view: players walk into it whole and leave
 * it with `null`. The page draws the interest area, counts the players in
 * view against the players in the room (from `GET /api/rooms/<id>/`), and
 * shows the player's private field `_secret` (a colour code) that no other
 * member ever receives.
 *
 * `?x=..&y=..` in the URL chooses the join position (JOIN_ROOM may choose
 * one); otherwise the server picks a spawn point.
 *
 * `window.kasagiWorld` exposes the client and the local position, for the
 * browser tests and the console.
 *
 * @module kasagi/demo-world
 */

import { connect } from "./client.js";
import { Interpolator, KEY_DIRECTIONS, clampPoint, moveTick } from "./demo-motion.js";
import { loadProfile, tabStorage } from "./demo-profile.js";

const ROOM_POLL_MS = 2000;
const PANEL_MS = 250;
/** units of the world the map shows across */
const VIEW_UNITS = 3600;
const DOT_RADIUS = 9;
const SECRET_KEY = "kasagi.world.secret";

const $ = (id) => document.getElementById(id);
const config = JSON.parse($("kasagi-config").textContent);
const size = Number(config.worldSize) || 10000;
const cell = Number(config.cell) || 1000;
const tickMs = Math.max(Number(config.tickMs) || 50, 16);
const maxStep = (Number(config.speed) * tickMs) / 1000;

const root = $("world");
const badge = $("status-badge");
const banner = $("banner");
const canvas = /** @type {HTMLCanvasElement} */ ($("world-map"));
const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
const storage = tabStorage();
const profile = loadProfile(storage, config.username);
const secret = loadSecret();

const client = connect(config.wsPath);
const interpolator = new Interpolator({ delayMs: 2 * tickMs, stepMs: tickMs });

/** @type {{x: number, y: number} | null} */
let position = null;
/** @type {{x: number, y: number} | null} */
let target = null;
let sent = { x: null, y: null };
let inRoom = null;
const keys = new Set();

/** A colour code of this tab's own, kept across reloads of the tab. */
function loadSecret() {
  let code = null;
  try {
    code = sessionStorage.getItem(SECRET_KEY);
  } catch {
    code = null;
  }
  if (!code || !/^#[0-9a-f]{6}$/.test(code)) {
    code = `#${Math.floor(Math.random() * 0x1000000).toString(16).padStart(6, "0")}`;
    try {
      sessionStorage.setItem(SECRET_KEY, code);
    } catch {
      // private mode: a new secret per load is fine
    }
  }
  return code;
}

/** The join position from `?x=&y=`, if the URL gives one. */
function chosenPosition() {
  const params = new URLSearchParams(window.location.search);
  const x = Number(params.get("x"));
  const y = Number(params.get("y"));
  if (params.has("x") && params.has("y") && Number.isFinite(x) && Number.isFinite(y)) {
    return clampPoint({ x, y }, size);
  }
  return null;
}

function me() {
  return client.playerId && client.state ? client.state.players?.[client.playerId] : null;
}

function adoptServerPlayer() {
  const player = me();
  if (!player || !Number.isFinite(player.x) || !Number.isFinite(player.y)) {
    return;
  }
  position = { x: player.x, y: player.y };
  target = { ...position };
  sent = { x: player.x, y: player.y };
}

function cellOf(value) {
  const index = Math.floor(value / cell);
  const last = Math.ceil(size / cell) - 1;
  return value >= size ? last : index;
}

/* ---------------- the view (the map) ---------------- */

function fit() {
  const cssSize = Math.max(1, Math.round(canvas.getBoundingClientRect().width));
  const ratio = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(cssSize * ratio)) {
    canvas.width = Math.round(cssSize * ratio);
    canvas.height = Math.round(cssSize * ratio);
  }
  return { cssSize, ratio };
}

/** The world point at the map's top-left corner: centred on the dot, inside the world. */
function viewOrigin(center) {
  const half = VIEW_UNITS / 2;
  const clampAxis = (v) => Math.min(Math.max(v - half, 0), size - VIEW_UNITS);
  return { x: clampAxis(center.x), y: clampAxis(center.y) };
}

function toWorld(event) {
  const rect = canvas.getBoundingClientRect();
  const origin = viewOrigin(position ?? { x: size / 2, y: size / 2 });
  const scale = VIEW_UNITS / Math.max(rect.width, 1);
  return clampPoint({
    x: origin.x + (event.clientX - rect.left) * scale,
    y: origin.y + (event.clientY - rect.top) * scale,
  }, size);
}

function theme() {
  const style = getComputedStyle(canvas);
  const read = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
  return {
    background: read("--arena-bg", "#ffffff"),
    grid: read("--arena-grid", "#e5e7eb"),
    border: read("--arena-border", "#9ca3af"),
    text: read("--fg", "#111827"),
    focus: read("--focus", "#2563eb"),
  };
}

function draw(now) {
  const { cssSize, ratio } = fit();
  const colors = theme();
  const center = position ?? { x: size / 2, y: size / 2 };
  const origin = viewOrigin(center);
  const scale = cssSize / VIEW_UNITS;
  const px = (p) => ({ x: (p.x - origin.x) * scale, y: (p.y - origin.y) * scale });
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.fillStyle = colors.border;
  ctx.fillRect(0, 0, cssSize, cssSize);
  const world0 = px({ x: 0, y: 0 });
  const world1 = px({ x: size, y: size });
  ctx.fillStyle = colors.background;
  ctx.fillRect(world0.x, world0.y, world1.x - world0.x, world1.y - world0.y);

  if (position) {
    // the interest area: the 3 × 3 cells around ours (what the server sends us)
    const cx = cellOf(position.x);
    const cy = cellOf(position.y);
    const a = px({ x: Math.max(cx - 1, 0) * cell, y: Math.max(cy - 1, 0) * cell });
    const b = px({ x: Math.min((cx + 2) * cell, size), y: Math.min((cy + 2) * cell, size) });
    ctx.fillStyle = colors.focus;
    ctx.globalAlpha = 0.08;
    ctx.fillRect(a.x, a.y, b.x - a.x, b.y - a.y);
    ctx.globalAlpha = 0.7;
    ctx.strokeStyle = colors.focus;
    ctx.lineWidth = 2;
    ctx.strokeRect(a.x, a.y, b.x - a.x, b.y - a.y);
    // the range every player within is guaranteed to be in view: ±1 cell on both axes
    const r0 = px({ x: position.x - cell, y: position.y - cell });
    ctx.setLineDash([6, 5]);
    ctx.lineWidth = 1;
    ctx.strokeRect(r0.x, r0.y, 2 * cell * scale, 2 * cell * scale);
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;
  }

  ctx.strokeStyle = colors.grid;
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let unit = cell; unit < size; unit += cell) {
    const v = px({ x: unit, y: unit });
    ctx.moveTo(Math.round(v.x) + 0.5, world0.y);
    ctx.lineTo(Math.round(v.x) + 0.5, world1.y);
    ctx.moveTo(world0.x, Math.round(v.y) + 0.5);
    ctx.lineTo(world1.x, Math.round(v.y) + 0.5);
  }
  ctx.stroke();
  ctx.strokeStyle = colors.text;
  ctx.lineWidth = 2;
  ctx.strokeRect(world0.x, world0.y, world1.x - world0.x, world1.y - world0.y); // the world's edge

  const players = client.state?.players ?? {};
  const self = client.playerId;
  for (const [id, player] of Object.entries(players)) {
    const isSelf = id === self;
    const at = isSelf ? position : interpolator.sample(id, now);
    if (!at) {
      continue;
    }
    const p = px(at);
    ctx.beginPath();
    ctx.arc(p.x, p.y, DOT_RADIUS, 0, Math.PI * 2);
    ctx.fillStyle = typeof player?.color === "string" ? player.color : "#888888";
    ctx.fill();
    ctx.lineWidth = 2;
    ctx.strokeStyle = colors.background;
    ctx.stroke();
    if (isSelf) {
      ctx.beginPath();
      ctx.arc(p.x, p.y, DOT_RADIUS + 4, 0, Math.PI * 2);
      ctx.strokeStyle = colors.text;
      ctx.stroke();
    }
    const name = String(player?.playerName ?? id);
    ctx.font = "600 12px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.fillStyle = colors.text;
    ctx.fillText(isSelf ? `${name} (you)` : name, p.x, p.y - DOT_RADIUS - 7);
  }
  requestAnimationFrame(draw);
}

/* ---------------- the panel ---------------- */

function renderPanel() {
  const players = client.state?.players ?? {};
  const ids = Object.keys(players);
  $("in-view").textContent = String(ids.length);
  $("in-room").textContent = inRoom === null ? "–" : String(inRoom);
  root.dataset.inView = String(ids.length);
  root.dataset.inRoom = inRoom === null ? "" : String(inRoom);
  $("players-count").textContent = String(ids.length);
  $("fact-player").textContent = client.playerId ?? "–";
  $("fact-version").textContent = client.version === null ? "–" : String(client.version);
  if (position) {
    $("fact-position").textContent = `${Math.round(position.x)}, ${Math.round(position.y)}`;
    $("fact-cell").textContent = `${cellOf(position.x)}, ${cellOf(position.y)}`;
  }
  const mine = me();
  const shown = typeof mine?._secret === "string" ? mine._secret : null;
  $("secret-code").textContent = shown ?? "–";
  $("secret-swatch").style.background = shown ?? "transparent";
  const list = $("players-list");
  const items = ids.sort().map((id) => {
    const player = players[id] ?? {};
    const li = document.createElement("li");
    li.dataset.playerId = id;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = typeof player.color === "string" ? player.color : "#888888";
    const name = document.createElement("span");
    name.className = "player-name";
    name.textContent = String(player.playerName ?? id) + (id === client.playerId ? " (you)" : "");
    li.append(swatch, name);
    return li;
  });
  list.replaceChildren(...items);
}

async function pollRoom() {
  try {
    const answer = await fetch(config.apiRoom, { headers: { Accept: "application/json" } });
    if (answer.ok) {
      const room = await answer.json();
      inRoom = Number.isFinite(room.playerCount) ? room.playerCount : inRoom;
    }
  } catch {
    // the server is away: keep the last count
  }
}

/* ---------------- moving ---------------- */

function tick() {
  if (!client.playerId || !client.roomId || !position) {
    return;
  }
  let patch;
  ({ position, target, patch } = moveTick({ position, target, keys, maxStep, size, sent }));
  if (Object.keys(patch).length > 0) {
    client.update(patch);
    sent = { ...sent, ...patch };
  }
}

canvas.addEventListener("pointermove", (event) => {
  if (event.pointerType === "mouse" || event.buttons !== 0) {
    target = toWorld(event);
  }
});
canvas.addEventListener("pointerdown", (event) => {
  canvas.focus({ preventScroll: true });
  target = toWorld(event);
});
window.addEventListener("keydown", (event) => {
  if (event.code in KEY_DIRECTIONS && !event.altKey && !event.ctrlKey && !event.metaKey) {
    keys.add(event.code);
    event.preventDefault();
  }
});
window.addEventListener("keyup", (event) => keys.delete(event.code));
window.addEventListener("blur", () => keys.clear());

/* ---------------- server → page ---------------- */

function showBanner(text) {
  banner.textContent = text;
  banner.hidden = !text;
}

client.on("status", ({ status }) => {
  badge.textContent = status;
  badge.dataset.status = status;
  root.dataset.state = status;
});

client.on("state", ({ state, type }) => {
  const now = performance.now();
  const players = state.players ?? {};
  for (const [id, player] of Object.entries(players)) {
    if (id !== client.playerId && Number.isFinite(player?.x) && Number.isFinite(player?.y)) {
      interpolator.push(id, { x: player.x, y: player.y }, now);
    }
  }
  if (type !== "PLAYER_JOINED") {
    // players leave a view by PLAYER_LEFT, or by null in a DELTA_UPDATE (out of range)
    interpolator.retain(Object.keys(players));
  }
});

client.on("joined", ({ self, resumed }) => {
  if (!self) {
    return;
  }
  showBanner("");
  root.dataset.playerId = client.playerId ?? "";
  if (position === null || !resumed) {
    adoptServerPlayer();
  }
  pollRoom();
});

client.on("left", ({ self, reason }) => {
  if (self) {
    position = null;
    if (reason !== "left") {
      showBanner(`You are no longer in the room (${reason}). Reload to join again.`);
    }
  }
});

client.on("error", (error) => {
  if (error.code === "INVALID_UPDATE" || error.code === "RATE_LIMITED") {
    adoptServerPlayer(); // the server kept its own idea of us: walk on from there
  }
});

const fields = { playerName: profile.playerName, color: profile.color, _secret: secret };
const chosen = chosenPosition();
if (chosen) {
  Object.assign(fields, { x: Math.round(chosen.x), y: Math.round(chosen.y) });
}
const joined = client.join(config.roomId, fields).catch((error) => {
  showBanner(`Could not join: ${error.message}`);
  throw error;
});
joined.catch(() => {});

function tickLoop() {
  tick();
  setTimeout(tickLoop, tickMs);
}
setTimeout(tickLoop, tickMs);
setInterval(renderPanel, PANEL_MS);
setInterval(pollRoom, ROOM_POLL_MS);
requestAnimationFrame(draw);

window.kasagiWorld = {
  client,
  config,
  joined,
  secret,
  get position() {
    return position && { ...position };
  },
  /** Walk to a point of the world, as the pointer would. */
  moveTo(x, y) {
    target = clampPoint({ x, y }, size);
  },
  /** Ids of the players in this member's view (its state mirror). */
  inView() {
    return Object.keys(client.state?.players ?? {}).sort();
  },
  /** The room's player count, as last read from the REST API. */
  get inRoom() {
    return inRoom;
  },
  pollRoom,
};
