/**
 * The DOM side of the arena game (demo-game.js holds the rules): the
 * scoreboard list, the emote bubbles laid over the canvas at the players'
 * dots, the toasts, and the emote buttons. Bubbles are DOM elements, not
 * canvas drawings, so that screen readers and the browser tests can see them.
 *
 * @module kasagi/demo-game-view
 */

import { Bubbles, EMOTES, Toasts, hasScores, scoreboard } from "./demo-game.js";

export class GameView {
  /**
   * @param {{scores: HTMLElement, scoreList: HTMLOListElement, bubbles: HTMLElement,
   *          toasts: HTMLElement, emotes: HTMLElement | null}} elements
   * @param {{size: number, alwaysScores: boolean, onEmote: (emoji: string) => void}} options
   */
  constructor(elements, { size, alwaysScores, onEmote }) {
    this.el = elements;
    this.size = size;
    this.alwaysScores = alwaysScores;
    this.bubbles = new Bubbles();
    this.toasts = new Toasts();
    this.#scoreKey = "";
    this.#toastKey = "";
    /** @type {Map<string, HTMLElement>} */
    this.#bubbleNodes = new Map();
    if (elements.emotes) {
      EMOTES.forEach((emoji, index) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "secondary emote-button";
        button.textContent = emoji;
        button.dataset.emote = emoji;
        button.title = `Emote ${emoji} (key ${index + 1})`;
        button.setAttribute("aria-label", `Send emote ${emoji} (key ${index + 1})`);
        button.addEventListener("click", () => onEmote(emoji));
        elements.emotes.append(button);
      });
    }
  }

  #scoreKey;
  #toastKey;
  #bubbleNodes;

  /**
   * Redraw the scoreboard when the players' names or scores changed.
   *
   * @param {Record<string, any> | undefined} players
   * @param {string | null} self
   */
  renderScores(players, self) {
    const show = this.alwaysScores || hasScores(players);
    this.el.scores.hidden = !show;
    if (!show) {
      return;
    }
    const rows = scoreboard(players, self);
    const key = JSON.stringify(rows);
    if (key === this.#scoreKey) {
      return;
    }
    this.#scoreKey = key;
    const items = rows.map((row) => {
      const li = document.createElement("li");
      li.dataset.playerId = row.id;
      li.dataset.score = String(row.score);
      if (row.self) {
        li.classList.add("self");
      }
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = row.color;
      const name = document.createElement("span");
      name.className = "player-name";
      name.textContent = row.self ? `${row.name} (you)` : row.name;
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = String(row.score);
      li.append(swatch, name, score);
      return li;
    });
    this.el.scoreList.replaceChildren(...items);
  }

  /**
   * Place the bubbles still showing over their players' dots (drawn positions).
   *
   * @param {Map<string, {x: number, y: number}>} positions by playerId
   * @param {number} now ms
   */
  renderBubbles(positions, now) {
    const shown = this.bubbles.active(now);
    for (const [id, node] of this.#bubbleNodes) {
      if (!shown.has(id) || !positions.has(id)) {
        node.remove();
        this.#bubbleNodes.delete(id);
      }
    }
    for (const [id, emoji] of shown) {
      const at = positions.get(id);
      if (!at) {
        continue;
      }
      let node = this.#bubbleNodes.get(id);
      if (!node) {
        node = document.createElement("span");
        node.className = "bubble";
        node.dataset.playerId = id;
        this.el.bubbles.append(node);
        this.#bubbleNodes.set(id, node);
      }
      if (node.textContent !== emoji) {
        node.textContent = emoji;
      }
      node.style.left = `${(at.x / this.size) * 100}%`;
      node.style.top = `${(at.y / this.size) * 100}%`;
    }
  }

  /**
   * @param {string} text
   * @param {number} now ms
   */
  toast(text, now) {
    this.toasts.push(text, now);
    this.renderToasts(now);
  }

  /** @param {number} now ms */
  renderToasts(now) {
    const items = this.toasts.active(now);
    const key = items.map((item) => item.id).join(",");
    if (key === this.#toastKey) {
      return;
    }
    this.#toastKey = key;
    this.el.toasts.replaceChildren(
      ...items.map((item) => {
        const div = document.createElement("div");
        div.className = "toast";
        div.textContent = item.text;
        return div;
      }),
    );
  }
}
