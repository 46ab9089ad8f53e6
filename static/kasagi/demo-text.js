/**
 * Text helpers for the shared note: a character diff (one range, or every
 * separate edit), and caret mapping across a change. They work on strings
 * (UTF-16 code units) and on arrays of characters alike (the note model uses
 * code points, so that an emoji is never cut in two). Pure: no DOM.
 *
 * @module kasagi/demo-text
 */

/**
 * @typedef {string | string[]} Chars a string, or an array of characters
 *
 * @typedef {{start: number, endBefore: number, endAfter: number}} Change
 *   `before.slice(start, endBefore)` became `after.slice(start, endAfter)`
 *
 * @typedef {{start: number, end: number, text: string}} Hunk
 *   `base.slice(start, end)` is replaced by `text`
 */

/** Beyond this many edits the middle of two texts is taken as one replacement. */
const MAX_EDITS = 400;

/**
 * The single range that changed between two texts (common prefix and
 * suffix): enough to keep a caret in place.
 *
 * @param {Chars} before
 * @param {Chars} after
 * @returns {Change | null} null when they are equal
 */
export function diffRange(before, after) {
  const shorter = Math.min(before.length, after.length);
  let start = 0;
  while (start < shorter && before[start] === after[start]) {
    start += 1;
  }
  if (start === before.length && start === after.length) {
    return null;
  }
  let endBefore = before.length;
  let endAfter = after.length;
  while (endBefore > start && endAfter > start && before[endBefore - 1] === after[endAfter - 1]) {
    endBefore -= 1;
    endAfter -= 1;
  }
  return { start, endBefore, endAfter };
}

/**
 * Where a position (a caret) in `before` is after `change`: before the
 * change it stays, after it shifts, inside a replaced range it moves to the
 * range's end.
 *
 * @param {number} index
 * @param {Change | null} change
 * @returns {number}
 */
export function mapIndex(index, change) {
  if (change === null || index <= change.start) {
    return index;
  }
  if (index >= change.endBefore) {
    return index + change.endAfter - change.endBefore;
  }
  return change.endAfter;
}

/**
 * The edits that turn `base` into `other`, as hunks in `base`'s positions,
 * in order: a shortest character diff (Myers), so that two separate edits
 * stay two hunks.
 *
 * @param {Chars} base
 * @param {Chars} other
 * @returns {Hunk[]} positions in `base`'s units; `text` always a string
 */
export function diffHunks(base, other) {
  const range = diffRange(base, other);
  if (range === null) {
    return [];
  }
  const { start, endBefore, endAfter } = range;
  const a = base.slice(start, endBefore);
  const b = other.slice(start, endAfter);
  const path = shortestEdit(a, b);
  if (path === null) {
    return [{ start, end: endBefore, text: typeof b === "string" ? b : b.join("") }];
  }
  // path: the (x, y) points of the edit graph, from (0, 0) to (a.length, b.length)
  const hunks = [];
  let open = null;
  for (let i = 1; i < path.length; i += 1) {
    const [x0, y0] = path[i - 1];
    const [x1, y1] = path[i];
    if (x1 - x0 === 1 && y1 - y0 === 1) {
      open = null; // a kept character
      continue;
    }
    if (open === null) {
      open = { start: start + x0, end: start + x0, text: "" };
      hunks.push(open);
    }
    if (x1 > x0) {
      open.end = start + x1; // a deleted character
    } else {
      open.text += b[y0]; // an inserted character
    }
  }
  return hunks;
}

/**
 * Myers' O((N+M)·D) shortest edit script between `a` and `b`, as the path of
 * points it walks; null beyond MAX_EDITS edits.
 *
 * @param {Chars} a
 * @param {Chars} b
 * @returns {[number, number][] | null}
 */
function shortestEdit(a, b) {
  const n = a.length;
  const m = b.length;
  const limit = Math.min(n + m, MAX_EDITS);
  const offset = limit + 1;
  const v = new Int32Array(2 * limit + 3);
  const trace = [];
  for (let d = 0; d <= limit; d += 1) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[offset + k - 1] < v[offset + k + 1])
        ? v[offset + k + 1]
        : v[offset + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x += 1;
        y += 1;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) {
        return backtrack(trace, offset, n, m);
      }
    }
  }
  return null;
}

function backtrack(trace, offset, n, m) {
  const path = [[n, m]];
  let x = n;
  let y = m;
  for (let d = trace.length - 1; d >= 0; d -= 1) {
    const v = trace[d];
    const k = x - y;
    const prevK = k === -d || (k !== d && v[offset + k - 1] < v[offset + k + 1]) ? k + 1 : k - 1;
    const prevX = d === 0 ? 0 : v[offset + prevK];
    const prevY = d === 0 ? 0 : prevX - prevK;
    while (x > prevX && y > prevY) {
      x -= 1;
      y -= 1;
      path.push([x, y]);
    }
    if (d > 0) {
      x = prevX;
      y = prevY;
      path.push([x, y]);
    }
  }
  return path.reverse();
}
