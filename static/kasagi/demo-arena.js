/**
 * The arena canvas of the room page: draws the coins, dots, names and
 * pointer cursors, and turns pointer positions into arena coordinates.
 *
 * The arena is a square of `size` units (the `arena` room type's 0..1000);
 * the canvas is whatever square the layout gives it, at the screen's pixel
 * density. Drawing reads only what it is handed: no client, no state.
 *
 * @module kasagi/demo-arena
 */

const DOT_RADIUS = 10; // CSS px, whatever the canvas size: readable on a phone
const COIN_RADIUS = 7;
const LABEL_FONT = "600 12px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";

/**
 * @typedef {{x: number, y: number}} Point
 * @typedef {{id: string, name: string, color: string, at: Point,
 *            cursor?: Point | null, self?: boolean, confirmed?: Point | null}} Figure
 */

export class ArenaView {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {number} size arena side in units
   */
  constructor(canvas, size) {
    this.canvas = canvas;
    this.size = size;
    this.ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
    this.cssSize = 0;
    this.ratio = 1;
    this.theme = readTheme(canvas);
    this.#fit();
    new ResizeObserver(() => this.#fit()).observe(canvas);
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
      this.theme = readTheme(canvas);
    });
  }

  #fit() {
    const cssSize = Math.max(1, Math.round(this.canvas.getBoundingClientRect().width));
    const ratio = window.devicePixelRatio || 1;
    if (cssSize === this.cssSize && ratio === this.ratio) {
      return;
    }
    this.cssSize = cssSize;
    this.ratio = ratio;
    this.canvas.width = Math.round(cssSize * ratio);
    this.canvas.height = Math.round(cssSize * ratio);
  }

  /**
   * Arena coordinates of a pointer event, clamped into the arena.
   *
   * @param {{clientX: number, clientY: number}} event
   * @returns {Point}
   */
  toArena(event) {
    const rect = this.canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) / Math.max(rect.width, 1)) * this.size;
    const y = ((event.clientY - rect.top) / Math.max(rect.height, 1)) * this.size;
    return {
      x: Math.min(Math.max(x, 0), this.size),
      y: Math.min(Math.max(y, 0), this.size),
    };
  }

  /**
   * Draw one frame.
   *
   * @param {Figure[]} figures
   * @param {Point[]} [coins] the room's coins (under the dots)
   */
  draw(figures, coins = []) {
    const { ctx, cssSize, ratio, theme } = this;
    const scale = cssSize / this.size;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.fillStyle = theme.background;
    ctx.fillRect(0, 0, cssSize, cssSize);
    this.#grid(scale);
    const px = (p) => ({ x: p.x * scale, y: p.y * scale });
    for (const coin of coins) {
      this.#coin(px(coin));
    }
    for (const figure of figures) {
      if (figure.self && figure.confirmed) {
        // where the server has us: a ghost trailing the local dot by a round trip
        const ghost = px(figure.confirmed);
        ctx.beginPath();
        ctx.arc(ghost.x, ghost.y, DOT_RADIUS, 0, Math.PI * 2);
        ctx.strokeStyle = figure.color;
        ctx.globalAlpha = 0.45;
        ctx.lineWidth = 1.5;
        ctx.stroke();
        ctx.globalAlpha = 1;
      }
    }
    for (const figure of figures) {
      this.#dot(px(figure.at), figure);
    }
    for (const figure of figures) {
      if (!figure.self && figure.cursor) {
        const pointer = px(figure.cursor);
        const dot = px(figure.at);
        if (Math.hypot(pointer.x - dot.x, pointer.y - dot.y) > 3 * DOT_RADIUS) {
          this.#cursor(pointer, figure); // on the dot, the dot says it all
        }
      }
    }
  }

  #grid(scale) {
    const { ctx, cssSize, theme } = this;
    ctx.strokeStyle = theme.grid;
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let unit = 100; unit < this.size; unit += 100) {
      const at = Math.round(unit * scale) + 0.5;
      ctx.moveTo(at, 0);
      ctx.lineTo(at, cssSize);
      ctx.moveTo(0, at);
      ctx.lineTo(cssSize, at);
    }
    ctx.stroke();
    ctx.strokeStyle = theme.border;
    ctx.strokeRect(0.5, 0.5, cssSize - 1, cssSize - 1);
  }

  #coin(at) {
    const { ctx, theme } = this;
    ctx.beginPath();
    ctx.arc(at.x, at.y, COIN_RADIUS, 0, Math.PI * 2);
    ctx.fillStyle = theme.coin;
    ctx.fill();
    ctx.lineWidth = 2;
    ctx.strokeStyle = theme.coinEdge;
    ctx.stroke();
    ctx.beginPath();
    ctx.arc(at.x, at.y, COIN_RADIUS * 0.45, 0, Math.PI * 2);
    ctx.lineWidth = 1;
    ctx.stroke();
  }

  #dot(at, figure) {
    const { ctx, theme } = this;
    ctx.beginPath();
    ctx.arc(at.x, at.y, DOT_RADIUS, 0, Math.PI * 2);
    ctx.fillStyle = figure.color;
    ctx.fill();
    ctx.lineWidth = 2;
    ctx.strokeStyle = theme.background;
    ctx.stroke();
    if (figure.self) {
      ctx.beginPath();
      ctx.arc(at.x, at.y, DOT_RADIUS + 4, 0, Math.PI * 2);
      ctx.strokeStyle = theme.text;
      ctx.lineWidth = 2;
      ctx.stroke();
    }
    const label = figure.self ? `${figure.name} (you)` : figure.name;
    this.#label(label, at.x, at.y - DOT_RADIUS - 8, theme.text, "center");
  }

  #cursor(at, figure) {
    const { ctx, theme } = this;
    ctx.beginPath();
    ctx.moveTo(at.x, at.y);
    ctx.lineTo(at.x, at.y + 16);
    ctx.lineTo(at.x + 4.5, at.y + 12);
    ctx.lineTo(at.x + 11, at.y + 12);
    ctx.closePath();
    ctx.fillStyle = figure.color;
    ctx.fill();
    ctx.strokeStyle = theme.background;
    ctx.lineWidth = 1.5;
    ctx.stroke();
    this.#label(figure.name, at.x + 12, at.y + 24, figure.color, "left");
  }

  #label(text, x, y, color, align) {
    const { ctx, theme } = this;
    ctx.font = LABEL_FONT;
    ctx.textAlign = align;
    ctx.textBaseline = "middle";
    ctx.lineWidth = 3;
    ctx.strokeStyle = theme.background;
    ctx.strokeText(text, x, y);
    ctx.fillStyle = color;
    ctx.fillText(text, x, y);
  }
}

/**
 * The canvas colours, from the page's CSS custom properties.
 *
 * @param {Element} element
 */
function readTheme(element) {
  const style = getComputedStyle(element);
  const read = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
  return {
    background: read("--arena-bg", "#ffffff"),
    grid: read("--arena-grid", "#e5e7eb"),
    border: read("--arena-border", "#9ca3af"),
    text: read("--fg", "#111827"),
    coin: read("--coin", "#facc15"),
    coinEdge: read("--coin-edge", "#a16207"),
  };
}
