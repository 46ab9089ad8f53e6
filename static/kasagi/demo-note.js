/**
 * The shared note of the room page: a textarea bound to the note's CRDT
 * (`demo-note-crdt.js`, the entity `entities.note`), with the other
 * players' text cursors drawn in it.
 *
 * Local typing goes into the CRDT at once and out at most once a tick (the
 * page's tick loop calls `takePatch()`). A remote change replaces the
 * textarea's text and keeps the local caret after the same character. Each
 * player's text cursor is a field of its own player object, `caret:
 * [startAnchor, endAnchor]`, the ids of the characters before the selection's
 * ends ("" for the start), so every page can place it in its own copy of the
 * text; it disappears with the player.
 *
 * @module kasagi/demo-note
 */

import { NoteCrdt } from "./demo-note-crdt.js";
import { diffRange, mapIndex } from "./demo-text.js";

export const NOTE_ENTITY = "note";

/**
 * Code points in `text` before the UTF-16 offset `offset` (textarea
 * selections count UTF-16 units, the note counts characters).
 *
 * @param {string} text
 * @param {number} offset
 */
function toChars(text, offset) {
  return Array.from(text.slice(0, offset)).length;
}

/**
 * The UTF-16 offset of the `count`-th character of `text`.
 *
 * @param {string} text
 * @param {number} count
 */
function toOffset(text, count) {
  let offset = 0;
  let seen = 0;
  for (const char of text) {
    if (seen === count) {
      break;
    }
    offset += char.length;
    seen += 1;
  }
  return offset;
}

export class SharedNote {
  /**
   * @param {{textarea: HTMLTextAreaElement, backdrop: HTMLElement, meta: HTMLElement}} elements
   * @param {{readOnly: boolean}} options
   */
  constructor({ textarea, backdrop, meta }, { readOnly }) {
    this.textarea = textarea;
    this.backdrop = backdrop;
    this.meta = meta;
    this.readOnly = readOnly;
    this.crdt = new NoteCrdt();
    /** @type {object | null | undefined} the last entity applied */
    this.entity = undefined;
    /** @type {string} the caret last sent, as JSON */
    this.caretSent = "null";
    this.caretSignature = "";
    /** @type {Map<string, string>} where each other player's caret was last drawn */
    this.caretsDrawn = new Map();

    textarea.addEventListener("input", () => {
      if (!this.readOnly) {
        this.crdt.edit(textarea.value);
      }
    });
    textarea.addEventListener("scroll", () => {
      backdrop.scrollTop = textarea.scrollTop;
    });
  }

  /**
   * The entity patch to send this tick, if the text changed locally.
   *
   * @param {string} playerId
   * @param {string} playerName
   * @returns {object | null}
   */
  takePatch(playerId, playerName) {
    const chars = this.readOnly ? null : this.crdt.takePatch();
    return chars ? { chars, by: playerId, name: playerName } : null;
  }

  /** Send again what the server has not confirmed (after a refusal or a reconnect). */
  resend() {
    this.crdt.resend();
  }

  /**
   * This page's text cursor when it changed since the last call (`[start,
   * end]` anchors; `null` when the note lost focus), else `undefined`.
   *
   * @returns {[string, string] | null | undefined}
   */
  takeCaret() {
    const area = this.textarea;
    const focused = document.activeElement === area && !this.readOnly;
    const caret = focused
      ? [
          this.crdt.anchorAt(toChars(area.value, area.selectionStart)),
          this.crdt.anchorAt(toChars(area.value, area.selectionEnd)),
        ]
      : null;
    const json = JSON.stringify(caret);
    if (json === this.caretSent) {
      return undefined;
    }
    this.caretSent = json;
    return caret;
  }

  /** Forget the caret last sent (a new player object may not have it). */
  caretUnknown() {
    this.caretSent = "";
  }

  /**
   * Follow the server's note (call on every state change; an unchanged
   * entity costs nothing).
   *
   * @param {{chars?: object, name?: string} | undefined} entity
   */
  applyServer(entity) {
    if (entity === this.entity) {
      return;
    }
    this.entity = entity;
    this.meta.textContent = entity?.name ? `last edit: ${entity.name}` : "";
    const area = this.textarea;
    const focused = document.activeElement === area;
    const before = area.value;
    const anchors = [area.selectionStart, area.selectionEnd].map((offset) =>
      this.crdt.anchorAt(toChars(before, offset)),
    );
    this.crdt.receive(entity);
    const text = this.crdt.text;
    if (text === before) {
      return;
    }
    const change = diffRange(before, text);
    const [start, end] = anchors.map((anchor, i) => {
      const at = this.crdt.positionAfter(anchor);
      const offset = i === 0 ? area.selectionStart : area.selectionEnd;
      return at === null ? mapIndex(offset, change) : toOffset(text, at);
    });
    area.value = text;
    if (focused) {
      area.setSelectionRange(start, end);
    }
    this.caretSignature = ""; // the text under the carets changed
  }

  /**
   * Draw the other players' text cursors under the (transparent) textarea.
   *
   * @param {Record<string, any>} players
   * @param {string | null} me
   */
  renderCarets(players, me) {
    const text = this.textarea.value;
    const marks = [];
    for (const [id, player] of Object.entries(players ?? {})) {
      const caret = player?.caret;
      if (id === me || !Array.isArray(caret) || caret.length !== 2) {
        continue;
      }
      const [a, b] = caret.map((anchor) =>
        typeof anchor === "string" ? this.crdt.positionAfter(anchor) : null,
      );
      if (a === null || b === null) {
        continue; // typed after characters this page has not received yet
      }
      marks.push({
        id,
        start: toOffset(text, Math.min(a, b)),
        end: toOffset(text, Math.max(a, b)),
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
