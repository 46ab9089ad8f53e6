/**
 * Text helpers for the shared note: the note is one entity whose `text` is
 * replaced whole, last write wins (PROTOCOL §5). These helpers keep the
 * experience decent on top of that: a remote change keeps the local caret
 * where it belongs, and an edit typed while another arrives is replayed on
 * top of it instead of being lost.
 *
 * Every edit is treated as one replaced range (common prefix and suffix),
 * which is exact for typing, deleting and pasting at one place: the common
 * case of a shared note. Pure: no DOM.
 *
 * @module kasagi/demo-text
 */

/**
 * @typedef {{start: number, endBefore: number, endAfter: number}} Change
 *   `before.slice(start, endBefore)` became `after.slice(start, endAfter)`
 */

/**
 * The single range that changed between two texts.
 *
 * @param {string} before
 * @param {string} after
 * @returns {Change | null} null when they are equal
 */
export function diffRange(before, after) {
  if (before === after) {
    return null;
  }
  const shorter = Math.min(before.length, after.length);
  let start = 0;
  while (start < shorter && before.charCodeAt(start) === after.charCodeAt(start)) {
    start += 1;
  }
  let endBefore = before.length;
  let endAfter = after.length;
  while (
    endBefore > start &&
    endAfter > start &&
    before.charCodeAt(endBefore - 1) === after.charCodeAt(endAfter - 1)
  ) {
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
 * Replay the local edit (`base` → `mine`) on top of a remote one (`base` →
 * `theirs`). When the two touch different places both survive; when they
 * overlap the local one wins (it will be sent last, which is what the
 * server would keep anyway).
 *
 * @param {string} base the text both edits started from
 * @param {string} mine
 * @param {string} theirs
 * @returns {string}
 */
export function rebase(base, mine, theirs) {
  const local = diffRange(base, mine);
  if (local === null) {
    return theirs;
  }
  const remote = diffRange(base, theirs);
  if (remote === null) {
    return mine;
  }
  const inserted = mine.slice(local.start, local.endAfter);
  if (local.endBefore <= remote.start) {
    // mine lies wholly before theirs: same offsets in their text
    return theirs.slice(0, local.start) + inserted + theirs.slice(local.endBefore);
  }
  if (local.start >= remote.endBefore) {
    const shift = remote.endAfter - remote.endBefore;
    return (
      theirs.slice(0, local.start + shift) + inserted + theirs.slice(local.endBefore + shift)
    );
  }
  return mine;
}
