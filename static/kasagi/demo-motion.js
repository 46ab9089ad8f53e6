/**
 * Movement for the arena demo: how the own dot walks towards its target
 * without breaking the room type's speed limit, and how remote dots are
 * drawn smoothly between the positions the server relays (one per tick at
 * most).
 *
 * Pure: no DOM, no clock of its own (every function takes the time), so the
 * Node tests run it as it is.
 *
 * @module kasagi/demo-motion
 */

/**
 * @typedef {{x: number, y: number}} Point
 */

/**
 * Clamp a point into the square arena `[0, size]²`.
 *
 * @param {Point} point
 * @param {number} size
 * @returns {Point}
 */
export function clampPoint(point, size) {
  return {
    x: Math.min(Math.max(point.x, 0), size),
    y: Math.min(Math.max(point.y, 0), size),
  };
}

/**
 * One step from `from` towards `to`, at most `maxStep` long.
 *
 * @param {Point} from
 * @param {Point} to
 * @param {number} maxStep
 * @returns {Point}
 */
export function stepToward(from, to, maxStep) {
  const dx = to.x - from.x;
  const dy = to.y - from.y;
  const distance = Math.hypot(dx, dy);
  if (distance <= maxStep || distance === 0) {
    return { x: to.x, y: to.y };
  }
  const scale = maxStep / distance;
  return { x: from.x + dx * scale, y: from.y + dy * scale };
}

/**
 * The direction the held arrow/WASD keys point to, as a unit vector (or 0,0).
 *
 * @param {Iterable<string>} codes `KeyboardEvent.code` values currently held
 *   (codes, not keys: Shift or a layout change cannot leave a key stuck)
 * @returns {Point}
 */
export function keyDirection(codes) {
  let x = 0;
  let y = 0;
  for (const code of codes) {
    const dir = KEY_DIRECTIONS[code];
    if (dir) {
      x += dir[0];
      y += dir[1];
    }
  }
  const length = Math.hypot(x, y);
  return length === 0 ? { x: 0, y: 0 } : { x: x / length, y: y / length };
}

/** Keys that move the dot, by `KeyboardEvent.code`: arrows and WASD. */
export const KEY_DIRECTIONS = Object.freeze({
  ArrowLeft: [-1, 0],
  ArrowRight: [1, 0],
  ArrowUp: [0, -1],
  ArrowDown: [0, 1],
  KeyA: [-1, 0],
  KeyD: [1, 0],
  KeyW: [0, -1],
  KeyS: [0, 1],
});

/**
 * Positions of remote players drawn a little in the past, interpolated
 * between the samples the server sent: smooth motion from updates that
 * arrive once a tick, at the cost of `delayMs` of extra latency.
 */
export class Interpolator {
  /**
   * @param {{delayMs?: number, stepMs?: number, keepMs?: number}} [options]
   *   `delayMs`: how far behind the newest sample to draw (about two ticks);
   *   `stepMs`: the usual time between samples (the tick): a sample after a
   *   longer pause moves from the old position over that time, not over the
   *   whole pause; `keepMs`: how long samples are kept
   */
  constructor({ delayMs = 100, stepMs = 50, keepMs = 1000 } = {}) {
    this.delayMs = delayMs;
    this.stepMs = stepMs;
    this.keepMs = keepMs;
    /** @type {Map<string, {t: number, x: number, y: number}[]>} */
    this.tracks = new Map();
  }

  /**
   * Record where a player is, as of time `t` (ms). A sample equal to the
   * last one is skipped, so calling this on every state change is cheap.
   *
   * @param {string} id
   * @param {Point} point
   * @param {number} t
   */
  push(id, point, t) {
    let track = this.tracks.get(id);
    if (!track) {
      track = [];
      this.tracks.set(id, track);
    }
    const last = track[track.length - 1];
    if (last && last.x === point.x && last.y === point.y) {
      return;
    }
    if (last && t <= last.t) {
      t = last.t + 1e-3; // keep times increasing
    }
    if (last && t - last.t > this.stepMs) {
      // after a pause: stay put until one step before the new sample
      track.push({ t: t - this.stepMs, x: last.x, y: last.y });
    }
    track.push({ t, x: point.x, y: point.y });
    while (track.length > 2 && track[1].t < t - this.keepMs) {
      track.shift();
    }
  }

  /**
   * Forget the players not in `ids` (they left).
   *
   * @param {Iterable<string>} ids
   */
  retain(ids) {
    const keep = new Set(ids);
    for (const id of this.tracks.keys()) {
      if (!keep.has(id)) {
        this.tracks.delete(id);
      }
    }
  }

  /**
   * Where to draw a player at time `now` (ms): its position `delayMs` ago,
   * between the two samples around that moment; the newest position once
   * the samples run out. Null for an unknown player.
   *
   * @param {string} id
   * @param {number} now
   * @returns {Point | null}
   */
  sample(id, now) {
    const track = this.tracks.get(id);
    if (!track || track.length === 0) {
      return null;
    }
    const at = now - this.delayMs;
    const last = track[track.length - 1];
    if (at >= last.t) {
      return { x: last.x, y: last.y };
    }
    if (at <= track[0].t) {
      return { x: track[0].x, y: track[0].y };
    }
    let i = track.length - 1;
    while (i > 0 && track[i - 1].t > at) {
      i -= 1;
    }
    const a = track[i - 1];
    const b = track[i];
    const f = (at - a.t) / (b.t - a.t);
    return { x: a.x + (b.x - a.x) * f, y: a.y + (b.y - a.y) * f };
  }
}

/**
 * One tick of movement (arena and world pages): held keys set a new target, the dot
 * steps toward it, and the patch holds the rounded `x`/`y` that differ from what was
 * last sent (empty when nothing changed).
 *
 * @param {{position: Point, target: Point | null, keys: Iterable<string>, maxStep: number,
 *   size: number, sent: {x?: number, y?: number}}} move
 * @returns {{position: Point, target: Point | null, patch: {x?: number, y?: number}}}
 */
export function moveTick({ position, target, keys, maxStep, size, sent }) {
  const dir = keyDirection(keys);
  if (dir.x !== 0 || dir.y !== 0) {
    target = clampPoint({ x: position.x + dir.x * maxStep, y: position.y + dir.y * maxStep }, size);
  }
  position = stepToward(position, target ?? position, maxStep);
  const patch = {};
  const x = Math.round(position.x);
  const y = Math.round(position.y);
  if (x !== sent.x) {
    patch.x = x;
  }
  if (y !== sent.y) {
    patch.y = y;
  }
  return { position, target, patch };
}
