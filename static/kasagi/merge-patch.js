/**
 * JSON Merge Patch (RFC 7396) as pure functions, for the Kasagi browser client.
 *
 * The room state mirror of client.js changes only through these functions.
 * They never mutate their arguments: a patch returns a new document that
 * shares every untouched branch with the old one, so a `state` event
 * listener may keep the previous mirror and compare by reference.
 * No I/O, no globals, no dependencies: this module also runs under Node for
 * the tests.
 *
 * @module kasagi/merge-patch
 */

/**
 * @typedef {null | boolean | number | string | JsonValue[] | {[key: string]: JsonValue}} JsonValue
 * @typedef {{[key: string]: JsonValue}} JsonObject
 */

/**
 * True for a JSON object (not null, not an array).
 *
 * @param {unknown} value
 * @returns {value is JsonObject}
 */
export function isPlainObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * Set an own, enumerable property, even for the key "__proto__" (which a
 * plain assignment would turn into a prototype change).
 *
 * @param {JsonObject} object
 * @param {string} key
 * @param {JsonValue} value
 */
function setOwn(object, key, value) {
  if (key === "__proto__") {
    Object.defineProperty(object, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    object[key] = value;
  }
}

/**
 * Apply a JSON Merge Patch to a document (RFC 7396 §2, MergePatch).
 *
 * A non-object patch replaces the target; an object patch is merged key by
 * key, `null` deleting the key. Arrays are replaced wholesale. Neither
 * argument is modified.
 *
 * @param {JsonValue | undefined} target the document (undefined when absent)
 * @param {JsonValue} patch the merge patch
 * @returns {JsonValue} the patched document
 */
export function applyMergePatch(target, patch) {
  if (!isPlainObject(patch)) {
    return patch;
  }
  const result = isPlainObject(target) ? { ...target } : {};
  for (const key of Object.keys(patch)) {
    const value = patch[key];
    if (value === null) {
      delete result[key];
    } else {
      const current = Object.prototype.hasOwnProperty.call(result, key) ? result[key] : undefined;
      setOwn(result, key, applyMergePatch(current, value));
    }
  }
  return result;
}

/**
 * Compose two merge patches into one: applying the result equals applying
 * `first` then `second`, on every document.
 *
 * That is not always expressible: when `first` sets a key to a non-object
 * (or deletes it) and `second` then merges an object into that key, the
 * sequence replaces the key by a fresh object, which no single merge patch
 * can say. Then this returns `undefined` and the caller keeps both patches.
 *
 * @param {JsonValue} first
 * @param {JsonValue} second
 * @returns {JsonValue | undefined} the composed patch, or undefined
 */
export function composeMergePatches(first, second) {
  if (!isPlainObject(second)) {
    return second;
  }
  if (!isPlainObject(first)) {
    return undefined;
  }
  const result = { ...first };
  for (const key of Object.keys(second)) {
    if (!Object.prototype.hasOwnProperty.call(result, key)) {
      setOwn(result, key, second[key]);
      continue;
    }
    const composed = composeMergePatches(result[key], second[key]);
    if (composed === undefined) {
      return undefined;
    }
    setOwn(result, key, composed);
  }
  return result;
}
