// The arena game's pure helpers (demo-game.js): coins, scoreboard, emote keys,
// bubbles and toasts that expire, the coin.taken toast text.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  BUBBLE_MS,
  Bubbles,
  EMOTES,
  Toasts,
  coinTakenText,
  coinsOf,
  emoteForKey,
  emoteOf,
  hasScores,
  scoreboard,
} from "../demo-game.js";

describe("coinsOf", () => {
  test("keeps coin-* entities of kind coin with finite coordinates, by id", () => {
    const coins = coinsOf({
      "coin-b": { kind: "coin", x: 10, y: 20 },
      "coin-a": { kind: "coin", x: 0, y: 1000 },
      note: { chars: [] },
      "coin-no-kind": { x: 1, y: 2 },
      "coin-no-y": { kind: "coin", x: 1 },
      "coin-text": { kind: "coin", x: "1", y: 2 },
      "gold-1": { kind: "coin", x: 1, y: 2 },
    });
    assert.deepEqual(coins, [
      { id: "coin-a", x: 0, y: 1000 },
      { id: "coin-b", x: 10, y: 20 },
    ]);
    assert.deepEqual(coinsOf(undefined), []);
  });
});

describe("scoreboard", () => {
  test("best score first, then name; no score counts 0", () => {
    const rows = scoreboard(
      {
        p1: { playerName: "Ann", score: 1, color: "#ff0000" },
        p2: { playerName: "Bob", score: 3 },
        p3: { playerName: "Cid" },
        p4: { playerName: "Abe", score: 1 },
      },
      "p3",
    );
    assert.deepEqual(
      rows.map((r) => [r.id, r.score, r.self]),
      [["p2", 3, false], ["p4", 1, false], ["p1", 1, false], ["p3", 0, true]],
    );
    assert.equal(rows[2].color, "#ff0000");
    assert.equal(rows[0].color, "#888888");
  });

  test("hasScores tells a scoring room", () => {
    assert.equal(hasScores({ a: { x: 1 } }), false);
    assert.equal(hasScores({ a: { x: 1 }, b: { score: 0 } }), true);
    assert.equal(hasScores(null), false);
  });
});

describe("emotes", () => {
  test("keys 1 to 5, on the digit row and the keypad", () => {
    assert.equal(EMOTES.length, 5);
    assert.deepEqual(["Digit1", "Digit2", "Digit3", "Digit4", "Digit5"].map(emoteForKey), EMOTES);
    assert.equal(emoteForKey("Numpad3"), EMOTES[2]);
    for (const code of ["Digit0", "Digit6", "KeyA", "ArrowUp", "Digit12"]) {
      assert.equal(emoteForKey(code), null, code);
    }
  });

  test("only the five emoji are shown from an event's data", () => {
    assert.equal(emoteOf({ emoji: EMOTES[4] }), EMOTES[4]);
    for (const data of [null, {}, { emoji: "<img src=x>" }, { emoji: 3 }, "👋", [EMOTES[0]]]) {
      assert.equal(emoteOf(data), null, JSON.stringify(data));
    }
  });

  test("a bubble shows for BUBBLE_MS, a newer one replaces it", () => {
    const bubbles = new Bubbles();
    bubbles.show("p1", "👋", 1000);
    bubbles.show("p2", "🎉", 1500);
    assert.deepEqual([...bubbles.active(1000 + BUBBLE_MS - 1)], [["p1", "👋"], ["p2", "🎉"]]);
    assert.deepEqual([...bubbles.active(1000 + BUBBLE_MS)], [["p2", "🎉"]]);
    bubbles.show("p2", "👍", 3000);
    assert.deepEqual([...bubbles.active(3000 + BUBBLE_MS - 1)], [["p2", "👍"]]);
    assert.equal(bubbles.active(3000 + BUBBLE_MS).size, 0);
  });
});

describe("toasts", () => {
  test("expire and keep only the newest few", () => {
    const toasts = new Toasts(100, 2);
    toasts.push("a", 0);
    toasts.push("b", 10);
    toasts.push("c", 20);
    assert.deepEqual(toasts.active(50).map((t) => t.text), ["b", "c"]);
    assert.deepEqual(toasts.active(115).map((t) => t.text), ["c"]);
    assert.deepEqual(toasts.active(120), []);
  });

  test("coin.taken names the player from the mirror", () => {
    const players = { p1: { playerName: "Ann" }, p2: {} };
    const data = (playerId) => ({ coinId: "coin-7", playerId, score: 2 });
    assert.equal(coinTakenText(data("p1"), players), "coin taken by Ann");
    assert.equal(coinTakenText(data("p1"), players, "p1"), "coin taken by Ann (you)");
    assert.equal(coinTakenText(data("p2"), players), "coin taken by p2");
    assert.equal(coinTakenText({ coinId: "coin-7" }, players), null);
    assert.equal(coinTakenText(null, players), null);
  });
});
