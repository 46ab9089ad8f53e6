/**
 * The shared note of the room page: a textarea bound to a Y.Text (the room's
 * document `note`, §16, kept in sync by `KasagiDoc`), with the other players'
 * text cursors drawn under it.
 *
 * Typing: each input event becomes one Yjs transaction (the one range that
 * changed, found on code points so an emoji is never cut in two), sent at once
 * as DOC_UPDATE. Remote changes: the textarea gets the new text and the local
 * selection is moved through the change's delta, so it stays after the same
 * characters. Two pages typing at the same place keep every keystroke: that is
 * the CRDT's job, not ours.
 *
 * Cursors are presence, not state: a page sends its selection as a §11 MESSAGE
 * `doc.cursor` (relayed as EVENT to the others) with both ends as Yjs relative
 * positions (base64), when it changes and every 10 s while the note has focus;
 * `null` when it loses focus. A cursor not refreshed for 30 s, or whose player
 * left the room, disappears: a closed page's cursor goes within 30 s.
 *
 * @module kasagi/demo-note
 */

import { fromBinary, toBase64 } from "./client.js";
import { KasagiDoc, Y } from "./documents.js";
import { diffRange } from "./demo-text.js";

export const NOTE_DOC = "note";
export const CURSOR_KIND = "doc.cursor";
const CURSOR_REFRESH_MS = 10_000;
const CURSOR_TTL_MS = 30_000;

/**
 * UTF-16 offsets of the one range of code points that changed.
 *
 * @param {string} before
 * @param {string} after
 * @returns {{start: number, removed: number, inserted: string} | null}
 */
export function textChange(before, after) {
  const a = Array.from(before);
  const b = Array.from(after);
  const change = diffRange(a, b);
  if (change === null) {
    return null;
  }
  const start = a.slice(0, change.start).join("").length;
  const removed = a.slice(change.start, change.endBefore).join("").length;
  return { start, removed, inserted: b.slice(change.start, change.endAfter).join("") };
}

/**
 * Where a UTF-16 offset is after a Y.Text delta: text inserted before it pushes
 * it on (at it: it stays before the new text), text deleted before it pulls it
 * back.
 *
 * @param {number} index
 * @param {Array<{retain?: number, insert?: string, delete?: number}>} delta
 */
export function mapThroughDelta(index, delta) {
  let old = 0; // position in the text before the change
  let shift = 0;
  for (const op of delta) {
    if (old > index) {
      break;
    }
    if (op.retain) {
      old += op.retain;
    } else if (typeof op.insert === "string") {
      if (old < index) {
        shift += op.insert.length;
      }
    } else if (op.delete) {
      if (old < index) {
        shift -= Math.min(op.delete, index - old);
      }
      old += op.delete;
    }
  }
  return index + shift;
}

export class SharedNote {
  /**
   * @param {{textarea: HTMLTextAreaElement, backdrop: HTMLElement, meta: HTMLElement}} elements
   * @param {{readOnly: boolean, client: import("./client.js").KasagiClient}} options
   */
  constructor({ textarea, backdrop, meta }, { readOnly, client }) {
    this.textarea = textarea;
    this.backdrop = backdrop;
    this.meta = meta;
    this.readOnly = readOnly;
    this.binding = new KasagiDoc(client, NOTE_DOC);
    this.doc = this.binding.doc;
    this.text = this.doc.getText("note");
    /** @type {Map<string, {anchor: Uint8Array, head: Uint8Array, at: number}>} */
    this.cursors = new Map();
    this.caretSent = "null";
    this.caretSentAt = 0;
    this.caretSignature = "";
    /** @type {Map<string, string>} where each other player's caret was last drawn */
    this.caretsDrawn = new Map();
    this.players = {};
    this.me = null;

    textarea.addEventListener("input", () => {
      if (this.readOnly) {
        return;
      }
      const change = textChange(this.text.toString(), textarea.value);
      if (change) {
        this.doc.transact(() => {
          if (change.removed) {
            this.text.delete(change.start, change.removed);
          }
          if (change.inserted) {
            this.text.insert(change.start, change.inserted);
          }
        }, this);
      }
    });
    textarea.addEventListener("scroll", () => {
      backdrop.scrollTop = textarea.scrollTop;
    });
    this.text.observe((event, transaction) => {
      if (transaction.origin !== this) {
        this.applyRemote(event.delta);
      }
      this.meta.textContent = `Yjs document · ${this.text.length} characters`;
      this.caretSignature = ""; // the text under the carets changed
      this.renderCarets(this.players, this.me);
    });
  }

  /** @param {Array<{retain?: number, insert?: string, delete?: number}>} delta */
  applyRemote(delta) {
    const area = this.textarea;
    const focused = document.activeElement === area;
    const [start, end] = [area.selectionStart, area.selectionEnd].map((offset) =>
      mapThroughDelta(offset, delta),
    );
    area.value = this.text.toString();
    if (focused) {
      area.setSelectionRange(start, end);
    }
  }

  /**
   * This page's selection for a `doc.cursor` MESSAGE when it changed (or is due
   * for a refresh), `null` when the note lost focus, else `undefined`.
   *
   * @param {number} [now]
   */
  takeCaret(now = Date.now()) {
    const area = this.textarea;
    const focused = document.activeElement === area && !this.readOnly;
    const caret = focused
      ? {
          docId: NOTE_DOC,
          anchor: this.relative(area.selectionStart),
          head: this.relative(area.selectionEnd),
        }
      : null;
    const json = JSON.stringify(caret);
    if (json === this.caretSent && !(caret && now - this.caretSentAt > CURSOR_REFRESH_MS)) {
      return undefined;
    }
    this.caretSent = json;
    this.caretSentAt = now;
    return caret;
  }

  /** Send the caret again at the next tick (a new socket: the others may not have it). */
  caretUnknown() {
    this.caretSent = "";
  }

  /** @param {number} index */
  relative(index) {
    return toBase64(Y.encodeRelativePosition(Y.createRelativePositionFromTypeIndex(this.text, index)));
  }

  /** @param {string} encoded */
  absolute(encoded) {
    const bytes = fromBinary(encoded);
    if (!bytes) {
      return null;
    }
    try {
      const position = Y.createAbsolutePositionFromRelativePosition(
        Y.decodeRelativePosition(bytes), this.doc);
      return position && position.type === this.text ? position.index : null;
    } catch {
      return null;
    }
  }

  /**
   * A `doc.cursor` EVENT from another member.
   *
   * @param {string | null} from
   * @param {any} data
   */
  onCursor(from, data, now = Date.now()) {
    if (!from) {
      return;
    }
    if (data === null || data?.docId !== NOTE_DOC) {
      this.cursors.delete(from);
    } else if (typeof data.anchor === "string" && typeof data.head === "string") {
      this.cursors.set(from, { anchor: data.anchor, head: data.head, at: now });
    }
    this.renderCarets(this.players, this.me);
  }

  /**
   * Draw the other players' text cursors under the (transparent) textarea.
   *
   * @param {Record<string, any>} players
   * @param {string | null} me
   */
  renderCarets(players, me, now = Date.now()) {
    this.players = players ?? {};
    this.me = me;
    const text = this.textarea.value;
    const marks = [];
    for (const [id, cursor] of this.cursors) {
      const player = this.players[id];
      if (!player || now - cursor.at > CURSOR_TTL_MS) {
        this.cursors.delete(id); // gone, or silent too long (its page closed)
        continue;
      }
      if (id === me) {
        continue;
      }
      const a = this.absolute(cursor.anchor);
      const b = this.absolute(cursor.head);
      if (a === null || b === null || text !== this.text.toString()) {
        continue; // about characters this page has not received yet
      }
      marks.push({
        id,
        start: Math.min(a, b),
        end: Math.max(a, b),
        color: typeof player.color === "string" ? player.color : "#888888",
        name: String(player.playerName ?? id),
      });
    }
    marks.sort((m, n) => m.end - n.end || m.start - n.start);
    const signature = JSON.stringify([text, marks]);
    if (signature === this.caretSignature) {
      return;
    }
    this.caretSignature = signature;
    const drawn = new Map(marks.map((mark) => [mark.id, `${mark.start}:${mark.end}`]));
    const moved = new Set(
      marks.filter((m) => this.caretsDrawn.get(m.id) !== drawn.get(m.id)).map((m) => m.id),
    );
    this.caretsDrawn = drawn;
    const nodes = [];
    let at = 0;
    for (const mark of marks) {
      // a selection is highlighted when it does not overlap an earlier one
      if (mark.start < mark.end && mark.start >= at) {
        nodes.push(document.createTextNode(text.slice(at, mark.start)));
        const selection = document.createElement("mark");
        selection.style.setProperty("--c", mark.color);
        selection.textContent = text.slice(mark.start, mark.end);
        nodes.push(selection);
        at = mark.end;
      } else if (mark.end > at) {
        nodes.push(document.createTextNode(text.slice(at, mark.end)));
        at = mark.end;
      }
      const caret = document.createElement("span");
      caret.className = moved.has(mark.id) ? "caret-mark moved" : "caret-mark";
      caret.style.setProperty("--c", mark.color);
      caret.dataset.name = mark.name;
      nodes.push(caret);
    }
    // a trailing space keeps a final empty line the same height as in the textarea
    nodes.push(document.createTextNode(`${text.slice(at)} `));
    this.backdrop.replaceChildren(...nodes);
    this.backdrop.scrollTop = this.textarea.scrollTop;
  }
}
