/**
 * The arena game of the room page (PROTOCOL.md §11, §12): the coins the
 * server places, the scoreboard of the server-owned `score`, the emotes one
 * page sends to the others as MESSAGE `emote`, and the bubbles and toasts
 * that show them for a moment.
 *
 * Pure: no DOM, no client, no clock of its own (every call takes the time),
 * so the Node tests run it as it is. demo-room.js wires it to the page.
 *
 * @module kasagi/demo-game
 */

/** The five emotes, keys 1 to 5 (and the touch buttons, in this order). */
export const EMOTES = Object.freeze(["👋", "😂", "🎉", "❤️", "👍"]);
/** The MESSAGE / EVENT kind of an emote. */
export const EMOTE_KIND = "emote";
/** The EVENT the arena sends when a player takes a coin (§12). */
export const COIN_TAKEN = "coin.taken";
/** How long a bubble stays over a dot. */
export const BUBBLE_MS = 2000;
/** How long a toast stays. */
export const TOAST_MS = 3000;

/**
 * @typedef {{x: number, y: number}} Point
 * @typedef {{id: string, x: number, y: number}} Coin
 * @typedef {{id: string, name: string, color: string, score: number, self: boolean}} ScoreRow
 */

/**
 * The coins of a room: entities `coin-*` holding `{kind: "coin", x, y}` with
 * finite coordinates, sorted by id (a stable drawing order).
 *
 * @param {Record<string, any> | undefined | null} entities
 * @returns {Coin[]}
 */
export function coinsOf(entities) {
  const coins = [];
  for (const [id, entity] of Object.entries(entities ?? {})) {
    if (id.startsWith("coin-") && entity?.kind === "coin" &&
        Number.isFinite(entity.x) && Number.isFinite(entity.y)) {
      coins.push({ id, x: entity.x, y: entity.y });
    }
  }
  return coins.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * The scoreboard: every player, best score first, then by name and id
 * (players without a `score` count 0).
 *
 * @param {Record<string, any> | undefined | null} players
 * @param {string | null} [self] this page's playerId
 * @returns {ScoreRow[]}
 */
export function scoreboard(players, self = null) {
  const rows = Object.entries(players ?? {}).map(([id, player]) => ({
    id,
    name: String(player?.playerName ?? id),
    color: typeof player?.color === "string" ? player.color : "#888888",
    score: Number.isFinite(player?.score) ? player.score : 0,
    self: id === self,
  }));
  return rows.sort((a, b) =>
    b.score - a.score || a.name.localeCompare(b.name) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
}

/**
 * True when a room's players carry scores: the scoreboard is worth showing.
 *
 * @param {Record<string, any> | undefined | null} players
 */
export function hasScores(players) {
  return Object.values(players ?? {}).some((player) => Number.isFinite(player?.score));
}

/**
 * The emote of a key: `Digit1`..`Digit5` and `Numpad1`..`Numpad5`, else null.
 *
 * @param {string} code a `KeyboardEvent.code`
 * @returns {string | null}
 */
export function emoteForKey(code) {
  const match = /^(?:Digit|Numpad)([1-5])$/.exec(code);
  return match ? EMOTES[Number(match[1]) - 1] : null;
}

/**
 * The emoji of an `emote` EVENT's data, or null when it is not one of ours
 * (another client may send anything: only the five are shown).
 *
 * @param {any} data
 * @returns {string | null}
 */
export function emoteOf(data) {
  const emoji = data?.emoji;
  return typeof emoji === "string" && EMOTES.includes(emoji) ? emoji : null;
}

/** Things shown for a while: bubbles per player, toasts in a short list. */
export class Bubbles {
  /** @param {number} [ttlMs] */
  constructor(ttlMs = BUBBLE_MS) {
    this.ttlMs = ttlMs;
    /** @type {Map<string, {emoji: string, until: number}>} */
    this.byPlayer = new Map();
  }

  /**
   * Show `emoji` over `playerId` from `now` on (replacing its current bubble).
   *
   * @param {string} playerId
   * @param {string} emoji
   * @param {number} now ms
   */
  show(playerId, emoji, now) {
    this.byPlayer.set(playerId, { emoji, until: now + this.ttlMs });
  }

  /**
   * The bubbles still showing at `now`, by playerId (expired ones are dropped).
   *
   * @param {number} now ms
   * @returns {Map<string, string>}
   */
  active(now) {
    const shown = new Map();
    for (const [id, bubble] of this.byPlayer) {
      if (bubble.until <= now) {
        this.byPlayer.delete(id);
      } else {
        shown.set(id, bubble.emoji);
      }
    }
    return shown;
  }
}

/** Toast texts with their end times, newest last, at most `max`. */
export class Toasts {
  /**
   * @param {number} [ttlMs]
   * @param {number} [max]
   */
  constructor(ttlMs = TOAST_MS, max = 3) {
    this.ttlMs = ttlMs;
    this.max = max;
    /** @type {{id: number, text: string, until: number}[]} */
    this.items = [];
    this.nextId = 1;
  }

  /**
   * @param {string} text
   * @param {number} now ms
   * @returns {number} the toast's id
   */
  push(text, now) {
    const id = this.nextId++;
    this.items.push({ id, text, until: now + this.ttlMs });
    while (this.items.length > this.max) {
      this.items.shift();
    }
    return id;
  }

  /**
   * @param {number} now ms
   * @returns {{id: number, text: string}[]} the toasts still showing
   */
  active(now) {
    this.items = this.items.filter((item) => item.until > now);
    return this.items.map(({ id, text }) => ({ id, text }));
  }
}

/**
 * The toast text of a `coin.taken` EVENT, naming the player from the state
 * mirror (the event comes after the change that took the coin, §11).
 *
 * @param {any} data `{coinId, playerId, score}`
 * @param {Record<string, any> | undefined | null} players
 * @param {string | null} [self]
 * @returns {string | null} null for data that is not a coin taken
 */
export function coinTakenText(data, players, self = null) {
  const playerId = data?.playerId;
  if (typeof playerId !== "string") {
    return null;
  }
  const name = players?.[playerId]?.playerName;
  const who = typeof name === "string" && name ? name : playerId;
  return `coin taken by ${who}${playerId === self ? " (you)" : ""}`;
}
