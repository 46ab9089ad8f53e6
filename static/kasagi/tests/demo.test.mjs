// The demo page's pure helpers: movement under the speed limit, interpolation,
// the shared note's text merging, and the per-tab profile.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { memoryStorage } from "../client.js";
import { Interpolator, clampPoint, keyDirection, moveTick, stepToward } from "../demo-motion.js";
import {
  DeltaSavings,
  MessageLog,
  deltaSummary,
  formatBytes,
  recoverySummary,
} from "../demo-panel.js";
import { cleanName, loadProfile, newProfile, saveProfile } from "../demo-profile.js";
import { diffHunks, diffRange, mapIndex } from "../demo-text.js";

describe("stepToward", () => {
  test("reaches a close target at once", () => {
    assert.deepEqual(stepToward({ x: 0, y: 0 }, { x: 3, y: 4 }, 10), { x: 3, y: 4 });
  });

  test("never steps further than the limit", () => {
    const step = stepToward({ x: 0, y: 0 }, { x: 300, y: 400 }, 40);
    assert.ok(Math.abs(Math.hypot(step.x, step.y) - 40) < 1e-9);
    assert.ok(Math.abs(step.x / step.y - 0.75) < 1e-9); // along the line to the target
  });

  test("a walk of ticks stays under the arena's 1000 units/s", () => {
    const tickMs = 50;
    const maxStep = (800 * tickMs) / 1000;
    let at = { x: 0, y: 0 };
    for (let i = 0; i < 40; i += 1) {
      const next = stepToward(at, { x: 1000, y: 1000 }, maxStep);
      assert.ok(Math.hypot(next.x - at.x, next.y - at.y) <= maxStep + 1e-9);
      at = next;
    }
  });
});

describe("clampPoint and keyDirection", () => {
  test("clamps into the arena", () => {
    assert.deepEqual(clampPoint({ x: -5, y: 1200 }, 1000), { x: 0, y: 1000 });
  });

  test("arrows and WASD give unit vectors", () => {
    assert.deepEqual(keyDirection(new Set(["ArrowRight"])), { x: 1, y: 0 });
    const diagonal = keyDirection(new Set(["KeyW", "KeyD"]));
    assert.ok(Math.abs(Math.hypot(diagonal.x, diagonal.y) - 1) < 1e-9);
    assert.deepEqual(keyDirection(new Set(["ArrowLeft", "ArrowRight"])), { x: 0, y: 0 });
    assert.deepEqual(keyDirection(new Set(["KeyQ"])), { x: 0, y: 0 });
  });
});

describe("Interpolator", () => {
  test("draws between samples, delayMs behind", () => {
    const interp = new Interpolator({ delayMs: 100, stepMs: 50 });
    interp.push("p", { x: 0, y: 0 }, 1000);
    interp.push("p", { x: 100, y: 0 }, 1050);
    interp.push("p", { x: 200, y: 0 }, 1100);
    assert.deepEqual(interp.sample("p", 1125), { x: 50, y: 0 }); // t = 1025
    assert.deepEqual(interp.sample("p", 1200), { x: 200, y: 0 }); // t = 1100: the newest
    assert.deepEqual(interp.sample("p", 1500), { x: 200, y: 0 }); // past the newest: hold
    assert.deepEqual(interp.sample("p", 900), { x: 0, y: 0 }); // before the oldest
    assert.equal(interp.sample("nobody", 1000), null);
  });

  test("after a pause, moves over one step instead of the whole pause", () => {
    const interp = new Interpolator({ delayMs: 100, stepMs: 50 });
    interp.push("p", { x: 0, y: 0 }, 0);
    interp.push("p", { x: 40, y: 0 }, 5000);
    assert.deepEqual(interp.sample("p", 5000), { x: 0, y: 0 }); // t = 4900: still resting
    assert.deepEqual(interp.sample("p", 5075), { x: 20, y: 0 }); // t = 4975: half way
  });

  test("skips repeated positions and forgets players who left", () => {
    const interp = new Interpolator();
    interp.push("a", { x: 1, y: 1 }, 0);
    interp.push("a", { x: 1, y: 1 }, 10);
    interp.push("b", { x: 2, y: 2 }, 0);
    assert.equal(interp.tracks.get("a").length, 1);
    interp.retain(["a"]);
    assert.deepEqual([...interp.tracks.keys()], ["a"]);
  });

  test("keeps its history bounded", () => {
    const interp = new Interpolator({ keepMs: 1000, stepMs: 50 });
    for (let t = 0; t < 10000; t += 50) {
      interp.push("p", { x: t, y: 0 }, t);
    }
    assert.ok(interp.tracks.get("p").length <= 1000 / 50 + 2);
  });
});

describe("note text diffs", () => {
  test("diffRange finds the one replaced range", () => {
    assert.equal(diffRange("same", "same"), null);
    assert.deepEqual(diffRange("hello", "help"), { start: 3, endBefore: 5, endAfter: 4 });
    assert.deepEqual(diffRange("ab", "aXb"), { start: 1, endBefore: 1, endAfter: 2 });
  });

  test("mapIndex keeps a caret in place across a remote edit", () => {
    const change = diffRange("hello world", "hello brave world");
    assert.equal(mapIndex(2, change), 2); // before the insert
    assert.equal(mapIndex(11, change), 17); // after it: shifted
    assert.equal(mapIndex(5, diffRange("abcdef", "abXf")), 3); // inside a replaced range
  });

  test("diffHunks keeps separate edits separate", () => {
    assert.deepEqual(diffHunks("same", "same"), []);
    assert.deepEqual(diffHunks("[|]", "a[|]b"), [
      { start: 0, end: 0, text: "a" },
      { start: 3, end: 3, text: "b" },
    ]);
    assert.deepEqual(diffHunks("one two three", "one 2 three"), [{ start: 4, end: 7, text: "2" }]);
  });

  test("diffHunks turns base into the other text, whatever the edits", () => {
    const random = (() => {
      let seed = 7;
      return () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    })();
    const letters = "ab[]| ";
    for (let run = 0; run < 2000; run += 1) {
      let base = "";
      for (let i = Math.floor(random() * 16); i > 0; i -= 1) {
        base += letters[Math.floor(random() * letters.length)];
      }
      let other = base;
      for (let e = Math.floor(random() * 5); e > 0; e -= 1) {
        const at = Math.floor(random() * (other.length + 1));
        other = random() < 0.5
          ? other.slice(0, at) + letters[Math.floor(random() * letters.length)] + other.slice(at)
          : other.slice(0, at) + other.slice(at + 1);
      }
      let rebuilt = "";
      let at = 0;
      for (const hunk of diffHunks(base, other)) {
        assert.ok(hunk.start >= at && hunk.end >= hunk.start);
        rebuilt += base.slice(at, hunk.start) + hunk.text;
        at = hunk.end;
      }
      assert.equal(rebuilt + base.slice(at), other, JSON.stringify([base, other]));
    }
  });

  test("works on arrays of characters too (code points)", () => {
    assert.deepEqual(diffRange([..."a😀b"], [..."a😁b"]), { start: 1, endBefore: 2, endAfter: 2 });
    assert.deepEqual(diffHunks([..."a😀b"], [..."a😁b"]), [{ start: 1, end: 2, text: "😁" }]);
  });
});

describe("profile", () => {
  test("names follow the arena rule", () => {
    assert.equal(cleanName("  Ann  "), "Ann");
    assert.equal(cleanName("   "), null);
    assert.equal(cleanName(42), null);
    assert.equal(cleanName("x".repeat(40)).length, 32);
  });

  test("a new profile is the login name, else a guest", () => {
    assert.equal(newProfile("ann", () => 0).playerName, "ann");
    assert.match(newProfile(null).playerName, /^Guest-\d{4}$/);
    assert.match(newProfile(null).color, /^#[0-9A-F]{6}$/);
  });

  test("is kept per storage, and follows a login unless the user chose a name", () => {
    const storage = memoryStorage();
    const first = loadProfile(storage, null);
    assert.deepEqual(loadProfile(storage, null), { ...first, named: false });
    assert.equal(loadProfile(storage, "ann").playerName, "ann");
    saveProfile(storage, { playerName: "Captain", color: "#112233", named: true });
    assert.equal(loadProfile(storage, "ann").playerName, "Captain");
    assert.notDeepEqual(loadProfile(memoryStorage(), null), undefined);
  });

  test("survives garbage in storage", () => {
    const storage = memoryStorage();
    storage.setItem("kasagi:profile", "{not json");
    assert.match(loadProfile(storage, null).color, /^#[0-9A-F]{6}$/);
    assert.equal(loadProfile(null, "bob").playerName, "bob");
  });
});

describe("side panel figures", () => {
  test("formatBytes", () => {
    assert.equal(formatBytes(512), "512 B");
    assert.equal(formatBytes(1536), "1.5 KB");
    assert.equal(formatBytes(3 * 1024 * 1024), "3.0 MB");
  });

  test("a delta is compared with the same envelope around the whole state", () => {
    const savings = new DeltaSavings();
    savings.add(150, 50, 1000); // 100 B of envelope, 50 B of patch; the state is 1000 B
    assert.equal(savings.lastFull, 1100);
    savings.add(150, 50, 1000);
    assert.equal(savings.totalDelta, 300);
    assert.equal(savings.totalFull, 2200);
    assert.equal(deltaSummary(savings.totalDelta, savings.totalFull), "300 B vs 2.1 KB as full state (14%)");
  });

  test("a recovery is shown against the full state it replaced (§14)", () => {
    assert.equal(recoverySummary(null), "no resume by version yet");
    assert.equal(recoverySummary({ changes: 3, bytes: 10, fullBytes: 99, done: false }),
      "recovering…");
    assert.equal(
      recoverySummary({ changes: 20, bytes: 3174, fullBytes: 524288, done: true }),
      "recovered 20 changes (3.1 KB) instead of a full state (512.0 KB)",
    );
    assert.equal(recoverySummary({ changes: 1, bytes: 90, fullBytes: 700, done: true }),
      "recovered 1 change (90 B) instead of a full state (700 B)");
  });

  test("the message log keeps the newest few", () => {
    const log = new MessageLog(2);
    for (const type of ["A", "B", "C"]) {
      log.add({ direction: "in", message: { type }, bytes: 1 }, 0);
    }
    assert.deepEqual(log.entries.map((e) => e.message.type), ["C", "B"]);
    assert.equal(log.total, 3);
  });
});

describe("moveTick", () => {
  test("held keys move one step and only changed axes are patched", () => {
    const moved = moveTick({
      position: { x: 100, y: 100 }, target: null, keys: ["ArrowRight"], maxStep: 50, size: 1000,
      sent: { x: 100, y: 100 },
    });
    assert.deepEqual(moved.position, { x: 150, y: 100 });
    assert.deepEqual(moved.patch, { x: 150 });
  });

  test("no keys and no target: nothing to send", () => {
    const still = moveTick({
      position: { x: 5, y: 5 }, target: null, keys: [], maxStep: 50, size: 1000,
      sent: { x: 5, y: 5 },
    });
    assert.deepEqual(still.patch, {});
    assert.equal(still.target, null);
  });

  test("a tapped target is approached at most maxStep a tick, inside the field", () => {
    const step = moveTick({
      position: { x: 990, y: 0 }, target: { x: 1000, y: 300 }, keys: [], maxStep: 100,
      size: 1000, sent: {},
    });
    assert.ok(Math.hypot(step.position.x - 990, step.position.y) <= 100 + 1e-9);
    assert.deepEqual(Object.keys(step.patch).sort(), ["x", "y"]);
  });
});
