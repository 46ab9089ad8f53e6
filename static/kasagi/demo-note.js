/**
 * The shared note of the room page: one entity (`entities.note`) that
 * everyone edits, with the others' text cursors drawn in it.
 *
 * The entity is `{text, by, name, seq}`: the whole text, last write wins on
 * the server (PROTOCOL §5), plus who wrote it and that writer's sequence
 * number, so the page can tell its own echoes from other people's edits.
 * Local typing is sent at most once a tick (the page's tick loop calls
 * `takePatch()`); an edit from someone else arriving while local typing is
 * unsent is merged with it (`rebase`) rather than thrown away. Each
 * player's text cursor is a field of its own player object (`caret: [start,
 * end]`), so it disappears with the player.
 *
 * @module kasagi/demo-note
 */

import { diffRange, mapIndex, rebase } from "./demo-text.js";

export const NOTE_ENTITY = "note";

/**
 * @typedef {{text?: string, by?: string, name?: string, seq?: number}} NoteEntity
 */

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
    /** the text the server holds, as far as this page knows */
    this.serverText = "";
    /** local typing not sent yet */
    this.dirty = false;
    /** sent, and its echo not seen yet */
    this.inflight = false;
    this.seq = 0;
    /** @type {NoteEntity | null | undefined} */
    this.entity = undefined;
    /** @type {[number, number] | null} */
    this.caretSent = null;
    this.caretSignature = "";

    textarea.addEventListener("input", () => {
      this.dirty = true;
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
   * @returns {NoteEntity | null}
   */
  takePatch(playerId, playerName) {
    if (!this.dirty || this.readOnly) {
      return null;
    }
    this.dirty = false;
    this.inflight = true;
    this.seq += 1;
    return { text: this.textarea.value, by: playerId, name: playerName, seq: this.seq };
  }

  /**
   * This page's text cursor when it changed since the last call: `[start,
   * end]`, `null` when the note lost focus, `undefined` when unchanged.
   *
   * @returns {[number, number] | null | undefined}
   */
  takeCaret() {
    const focused = document.activeElement === this.textarea && !this.readOnly;
    const caret = focused ? [this.textarea.selectionStart, this.textarea.selectionEnd] : null;
    const same = caret === null
      ? this.caretSent === null
      : this.caretSent !== null && caret[0] === this.caretSent[0] && caret[1] === this.caretSent[1];
    if (same) {
      return undefined;
    }
    this.caretSent = caret;
    return caret;
  }

  /**
   * Follow the server's note (call on every state change; unchanged entities
   * cost nothing).
   *
   * @param {NoteEntity | undefined} entity
   * @param {string | null} me this page's playerId
   */
  applyServer(entity, me) {
    if (entity === this.entity) {
      return;
    }
    this.entity = entity;
    const text = typeof entity?.text === "string" ? entity.text : "";
    const base = this.serverText;
    this.serverText = text;
    this.meta.textContent = entity?.name ? `last edit: ${entity.name}` : "";
    if (me !== null && entity?.by === me) {
      if (Number(entity.seq) >= this.seq) {
        this.inflight = false;
      }
      if (!this.dirty && !this.inflight && this.textarea.value !== text) {
        this.#replaceText(text);
      }
      return;
    }
    if (this.dirty || this.inflight) {
      // someone else wrote while our typing was unsent or unconfirmed: keep both
      const merged = rebase(base, this.textarea.value, text);
      this.#replaceText(merged);
      this.dirty = merged !== text;
      this.inflight = false;
      return;
    }
    this.#replaceText(text);
  }

  /** @param {string} text */
  #replaceText(text) {
    const area = this.textarea;
    if (area.value === text) {
      return;
    }
    const change = diffRange(area.value, text);
    const focused = document.activeElement === area;
    const start = mapIndex(area.selectionStart, change);
    const end = mapIndex(area.selectionEnd, change);
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
      const [a, b] = caret.map((n) => Math.min(Math.max(Number(n) || 0, 0), text.length));
      marks.push({
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
    const nodes = [];
    let at = 0;
    let highlightedTo = 0;
    for (const mark of marks) {
      // a selection is highlighted when it does not overlap an earlier one
      if (mark.start < mark.end && mark.start >= highlightedTo && mark.start >= at) {
        nodes.push(document.createTextNode(text.slice(at, mark.start)));
        const selection = document.createElement("mark");
        selection.style.setProperty("--c", mark.color);
        selection.textContent = text.slice(mark.start, mark.end);
        nodes.push(selection);
        at = mark.end;
        highlightedTo = mark.end;
      } else if (mark.end > at) {
        nodes.push(document.createTextNode(text.slice(at, mark.end)));
        at = mark.end;
      }
      const caret = document.createElement("span");
      caret.className = "caret-mark";
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
