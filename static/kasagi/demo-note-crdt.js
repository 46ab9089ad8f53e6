/**
 * The shared note as a sequence CRDT (an RGA) stored in one entity, so that
 * everyone can type at once and no keystroke is lost, on nothing but the
 * protocol's merge patches.
 *
 * Every character ever typed is one key of the entity, never reused:
 *
 *     entities.note = {chars: {"<id>": ["<after>", "<char>"], ...}, by, name}
 *
 * `after` is the id of the character it was typed after ("" for the start);
 * a deleted character stays as a tombstone `["<after>", "<char>", 1]`. A
 * page sends, once a tick, a merge patch of the keys it added or marked
 * deleted; keys are unique to their writer, so the server's last-write-wins
 * never drops anyone's typing, and merged deltas lose nothing either: every
 * page ends up with the same set of keys, hence the same text. The text is
 * the tree of `after` links read depth first, the children of a character
 * newest first (ids carry a Lamport clock), which puts a character typed
 * after X right after X even if others typed after X before.
 *
 * Characters are code points (an emoji is one key, never half a surrogate
 * pair). Pure: no DOM; `demo-note.js` binds it to a textarea.
 *
 * @module kasagi/demo-note-crdt
 */

import { diffHunks } from "./demo-text.js";

/** Keys sent in one update at most (a paste goes out over several ticks). */
export const MAX_KEYS_PER_WRITE = 800;

/**
 * @typedef {[string, string] | [string, string, 1]} Entry `[after, char]`, `[after, char, 1]` deleted
 */

/**
 * `[clock, site]` of an id `<clock base36>.<site>`.
 *
 * @param {string} id
 * @returns {[number, string]}
 */
function parseId(id) {
  const dot = id.indexOf(".");
  const clock = parseInt(dot < 0 ? id : id.slice(0, dot), 36);
  return [Number.isFinite(clock) ? clock : 0, dot < 0 ? "" : id.slice(dot + 1)];
}

/** Newest first: higher clock first, then higher site. */
function newestFirst(a, b) {
  const [ca, sa] = parseId(a);
  const [cb, sb] = parseId(b);
  if (ca !== cb) {
    return cb - ca;
  }
  return sb < sa ? -1 : sb > sa ? 1 : 0;
}

/**
 * @param {unknown} value
 * @returns {value is Entry}
 */
function isEntry(value) {
  return (
    Array.isArray(value) &&
    value.length >= 2 &&
    typeof value[0] === "string" &&
    typeof value[1] === "string"
  );
}

export class NoteCrdt {
  /**
   * @param {{site?: string}} [options] `site`: this page's writer id, unique
   *   among the pages of the room (random by default)
   */
  constructor({ site = Math.random().toString(36).slice(2, 8) } = {}) {
    this.site = site;
    this.clock = 0;
    /** @type {Record<string, unknown>} the server's `chars` */
    this.server = {};
    /** @type {Map<string, Entry>} this page's entries the server has not shown yet */
    this.pending = new Map();
    /** @type {Set<string>} pending keys not sent yet */
    this.unsent = new Set();
    /** @type {string[]} the visible characters */
    this.chars = [];
    /** @type {string[]} their ids, index for index */
    this.ids = [];
    /** @type {Map<string, number>} visible index of each visible id */
    this.index = new Map();
  }

  /** The note's text as this page shows it. */
  get text() {
    return this.chars.join("");
  }

  /**
   * @param {string} id
   * @returns {Entry | undefined}
   */
  #entry(id) {
    const pending = this.pending.get(id);
    if (pending) {
      return pending;
    }
    const value = this.server[id];
    return isEntry(value) ? value : undefined;
  }

  /**
   * The server's note (the entity, or undefined when there is none).
   * Returns true when the text changed.
   *
   * @param {{chars?: Record<string, unknown>} | undefined | null} entity
   * @returns {boolean}
   */
  receive(entity) {
    const chars = entity && typeof entity.chars === "object" && entity.chars !== null
      ? entity.chars
      : {};
    this.server = chars;
    for (const [id, entry] of this.pending) {
      const stored = chars[id];
      // the server has it (or has it deleted already): no longer ours to send
      if (isEntry(stored) && (stored[2] === 1 || entry[2] !== 1)) {
        this.pending.delete(id);
        this.unsent.delete(id);
      }
    }
    for (const id of Object.keys(chars)) {
      const [clock] = parseId(id);
      if (clock > this.clock) {
        this.clock = clock;
      }
    }
    const before = this.text;
    this.#rebuild();
    return this.text !== before;
  }

  /**
   * Local typing: the whole new text of the textarea. The difference with
   * the current text becomes new and deleted characters.
   *
   * @param {string} text
   */
  edit(text) {
    const next = Array.from(text);
    const hunks = diffHunks(this.chars, next);
    if (hunks.length === 0) {
      return;
    }
    for (const hunk of hunks) {
      for (let i = hunk.start; i < hunk.end; i += 1) {
        const id = this.ids[i];
        const entry = this.#entry(id);
        this.#write(id, [entry[0], entry[1], 1]);
      }
      let after = hunk.start > 0 ? this.ids[hunk.start - 1] : "";
      for (const char of hunk.text) {
        this.clock += 1;
        const id = `${this.clock.toString(36)}.${this.site}`;
        this.#write(id, [after, char]);
        after = id;
      }
    }
    this.#rebuild();
  }

  #write(id, entry) {
    this.pending.set(id, entry);
    this.unsent.add(id);
  }

  /**
   * The merge patch of `chars` to send now (at most MAX_KEYS_PER_WRITE
   * keys), or null when there is nothing new.
   *
   * @returns {Record<string, Entry> | null}
   */
  takePatch() {
    if (this.unsent.size === 0) {
      return null;
    }
    /** @type {Record<string, Entry>} */
    const patch = {};
    let count = 0;
    for (const id of this.unsent) {
      if (count === MAX_KEYS_PER_WRITE) {
        break;
      }
      patch[id] = this.pending.get(id);
      this.unsent.delete(id);
      count += 1;
    }
    return patch;
  }

  /**
   * Send every pending entry again (a write was refused, or a connection
   * dropped before the server confirmed it). Harmless for those that did
   * arrive: the same key with the same value changes nothing.
   */
  resend() {
    for (const id of this.pending.keys()) {
      this.unsent.add(id);
    }
  }

  /**
   * The id of the character before a caret position (in characters), so
   * that the caret can follow it through a remote change ("" for the start).
   *
   * @param {number} position
   * @returns {string}
   */
  anchorAt(position) {
    return position > 0 ? (this.ids[Math.min(position, this.ids.length) - 1] ?? "") : "";
  }

  /**
   * Where the caret anchored after `anchor` is now, or null when that
   * character is gone.
   *
   * @param {string} anchor
   * @returns {number | null}
   */
  positionAfter(anchor) {
    if (anchor === "") {
      return 0;
    }
    const at = this.index.get(anchor);
    return at === undefined ? null : at + 1;
  }

  #rebuild() {
    /** @type {Map<string, string[]>} */
    const children = new Map();
    const seen = new Set();
    const add = (id) => {
      if (seen.has(id)) {
        return;
      }
      const entry = this.#entry(id);
      if (!entry) {
        return;
      }
      seen.add(id);
      const parent = entry[0] === "" || this.#entry(entry[0]) ? entry[0] : "";
      if (!children.has(parent)) {
        children.set(parent, []);
      }
      children.get(parent).push(id);
    };
    for (const id of Object.keys(this.server)) {
      add(id);
    }
    for (const id of this.pending.keys()) {
      add(id);
    }
    for (const list of children.values()) {
      list.sort(newestFirst);
    }
    const chars = [];
    const ids = [];
    const stack = [...(children.get("") ?? [])].reverse();
    const visited = new Set();
    while (stack.length > 0) {
      const id = stack.pop();
      if (visited.has(id)) {
        continue; // a cycle in malformed data: never loop
      }
      visited.add(id);
      const entry = this.#entry(id);
      if (entry[2] !== 1) {
        chars.push(entry[1]);
        ids.push(id);
      }
      const kids = children.get(id);
      if (kids) {
        for (let i = kids.length - 1; i >= 0; i -= 1) {
          stack.push(kids[i]);
        }
      }
    }
    this.chars = chars;
    this.ids = ids;
    this.index = new Map(ids.map((id, i) => [id, i]));
  }
}
