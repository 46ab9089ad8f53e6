// Pure merge patch helpers: RFC 7396 examples, immutability, composition.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { applyMergePatch, composeMergePatches, isPlainObject } from "../merge-patch.js";

/** RFC 7396 Appendix A: [original, patch, result], as JSON text. */
const APPENDIX_A = [
  ['{"a":"b"}', '{"a":"c"}', '{"a":"c"}'],
  ['{"a":"b"}', '{"b":"c"}', '{"a":"b","b":"c"}'],
  ['{"a":"b"}', '{"a":null}', "{}"],
  ['{"a":"b","b":"c"}', '{"a":null}', '{"b":"c"}'],
  ['{"a":["b"]}', '{"a":"c"}', '{"a":"c"}'],
  ['{"a":"c"}', '{"a":["b"]}', '{"a":["b"]}'],
  ['{"a": {"b": "c"}}', '{"a": {"b": "d", "c": null}}', '{"a": {"b": "d"}}'],
  ['{"a": [{"b":"c"}]}', '{"a": [1]}', '{"a": [1]}'],
  ['["a","b"]', '["c","d"]', '["c","d"]'],
  ['{"a":"b"}', '["c"]', '["c"]'],
  ['{"a":"foo"}', "null", "null"],
  ['{"a":"foo"}', '"bar"', '"bar"'],
  ['{"e":null}', '{"a":1}', '{"e":null,"a":1}'],
  ["[1,2]", '{"a":"b","c":null}', '{"a":"b"}'],
  ["{}", '{"a":{"bb":{"ccc":null}}}', '{"a":{"bb":{}}}'],
];

describe("applyMergePatch", () => {
  for (const [original, patch, result] of APPENDIX_A) {
    test(`RFC 7396 A: ${original} + ${patch} = ${result}`, () => {
      const got = applyMergePatch(JSON.parse(original), JSON.parse(patch));
      assert.deepEqual(got, JSON.parse(result));
    });
  }

  test("RFC 7396 §3 example document", () => {
    const target = {
      title: "Goodbye!",
      author: { givenName: "John", familyName: "Doe" },
      tags: ["example", "sample"],
      content: "This will be unchanged",
    };
    const patch = {
      title: "Hello!",
      phoneNumber: "+01-123-456-7890",
      author: { familyName: null },
      tags: ["example"],
    };
    assert.deepEqual(applyMergePatch(target, patch), {
      title: "Hello!",
      author: { givenName: "John" },
      tags: ["example"],
      content: "This will be unchanged",
      phoneNumber: "+01-123-456-7890",
    });
  });

  test("patches an absent document (undefined target)", () => {
    assert.deepEqual(applyMergePatch(undefined, { a: { b: null, c: 1 } }), { a: { c: 1 } });
  });

  test("never modifies the target or the patch", () => {
    const target = { players: { p1: { x: 1, y: 2 }, p2: { x: 5 } }, entities: {} };
    const patch = { players: { p1: { x: 3, y: null } }, entities: { d: { text: "hi" } } };
    const targetCopy = structuredClone(target);
    const patchCopy = structuredClone(patch);
    applyMergePatch(target, patch);
    assert.deepEqual(target, targetCopy);
    assert.deepEqual(patch, patchCopy);
  });

  test("shares untouched branches with the old document", () => {
    const target = { players: { p1: { x: 1 }, p2: { x: 5 } }, entities: { d: { text: "a" } } };
    const result = applyMergePatch(target, { players: { p1: { x: 2 } } });
    assert.notEqual(result, target);
    assert.notEqual(result.players, target.players);
    assert.equal(result.players.p2, target.players.p2);
    assert.equal(result.entities, target.entities);
  });

  test('a "__proto__" key is data, not a prototype change', () => {
    const patch = JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}');
    const result = applyMergePatch({}, patch);
    assert.equal(Object.getPrototypeOf(result), Object.prototype);
    assert.equal(result.polluted, undefined);
    assert.equal({}.polluted, undefined);
    assert.deepEqual(Object.keys(result).sort(), ["__proto__", "ok"]);
    assert.deepEqual(result.__proto__, { polluted: true }); // eslint-disable-line no-proto
    const removed = applyMergePatch(result, JSON.parse('{"__proto__": null}'));
    assert.deepEqual(Object.keys(removed), ["ok"]);
  });
});

describe("isPlainObject", () => {
  test("objects only", () => {
    assert.equal(isPlainObject({}), true);
    assert.equal(isPlainObject([]), false);
    assert.equal(isPlainObject(null), false);
    assert.equal(isPlainObject("x"), false);
  });
});

describe("composeMergePatches", () => {
  test("later values win, nested objects merge, deletions are kept", () => {
    const first = { x: 1, y: 1, o: { a: 1 } };
    const second = { x: 2, z: null, o: { b: 2 } };
    const expected = { x: 2, y: 1, z: null, o: { a: 1, b: 2 } };
    assert.deepEqual(composeMergePatches(first, second), expected);
  });

  test("an object merged into a replaced or deleted key is not expressible", () => {
    assert.equal(composeMergePatches({ a: null }, { a: { b: 1 } }), undefined);
    assert.equal(composeMergePatches({ a: 1 }, { a: { b: 1 } }), undefined);
  });

  test("applying the composition equals applying both, on random documents", () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const keys = ["a", "b", "c"];
    const value = (depth, allowNull) => {
      const r = random();
      if (allowNull && r < 0.2) return null;
      if (r < 0.45) return Math.floor(random() * 3);
      if (r < 0.55) return [Math.floor(random() * 3)];
      return depth > 0 ? object(depth - 1, allowNull) : "s";
    };
    const object = (depth, allowNull) => {
      const result = {};
      for (const key of keys) {
        if (random() < 0.5) result[key] = value(depth, allowNull);
      }
      return result;
    };
    let composedCount = 0;
    for (let i = 0; i < 2000; i += 1) {
      const doc = object(2, false);
      const first = object(2, true);
      const second = object(2, true);
      const composed = composeMergePatches(first, second);
      if (composed === undefined) continue;
      composedCount += 1;
      assert.deepEqual(
        applyMergePatch(doc, composed),
        applyMergePatch(applyMergePatch(doc, first), second),
        JSON.stringify({ doc, first, second, composed }),
      );
    }
    assert.ok(composedCount > 500, `only ${composedCount} composable pairs`);
  });
});
