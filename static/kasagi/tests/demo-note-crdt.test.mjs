// The shared note's CRDT against a simulated server that applies merge patches
// last-write-wins, delivers them in any interleaving and merges deltas (a page
// may only see the state after several writes), as PROTOCOL §5 allows.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { MAX_KEYS_PER_WRITE, NoteCrdt } from "../demo-note-crdt.js";
import { applyMergePatch } from "../merge-patch.js";

/** A small seeded PRNG (mulberry32), so that a failure can be replayed. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What each simulated typist does to the text it sees. */
const TYPISTS = {
  a: (text) => `a${text}`, // types at the start
  b: (text) => `${text}b`, // at the end
  c: (text) => {
    // in the middle, after the "|"
    const at = text.indexOf("|");
    return at < 0 ? `${text}c` : `${text.slice(0, at + 1)}c${text.slice(at + 1)}`;
  },
  x: (text, random) => {
    // deletes a letter somewhere (never the "[|]" landmarks)
    const letters = [...text].map((ch, i) => (/[a-z]/.test(ch) ? i : -1)).filter((i) => i >= 0);
    if (letters.length === 0) {
      return text;
    }
    const at = letters[Math.floor(random() * letters.length)];
    return text.slice(0, at) + text.slice(at + 1);
  },
};

function simulate(seed, letters, steps = 300) {
  const random = prng(seed);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const seedPage = new NoteCrdt({ site: "seed" });
  seedPage.edit("[|]");
  const server = { note: { chars: seedPage.takePatch() } };
  const pages = letters.map((letter, i) => ({
    letter,
    crdt: new NoteCrdt({ site: `s${i}` }),
    up: [], // patches on their way to the server
    down: [], // states on their way to the page
  }));
  const typed = Object.fromEntries(letters.map((l) => [l, 0]));
  for (const page of pages) {
    page.crdt.receive(server.note);
  }
  const send = (page) => {
    server.note = applyMergePatch(server.note, { chars: page.up.shift() });
    for (const other of pages) {
      other.down.push(server.note);
    }
  };
  const deliver = (page) => {
    const k = 1 + Math.floor(random() * page.down.length); // merged deltas
    const seen = page.down.splice(0, k);
    page.crdt.receive(seen[seen.length - 1]);
  };
  const tick = (page) => {
    const patch = page.crdt.takePatch();
    if (patch) {
      page.up.push(patch);
    }
  };

  for (let i = 0; i < steps; i += 1) {
    const page = pick(pages);
    const r = random();
    if (r < 0.3) {
      page.crdt.edit(TYPISTS[page.letter](page.crdt.text, random));
      typed[page.letter] += 1;
    } else if (r < 0.5) {
      tick(page);
    } else if (r < 0.75) {
      const senders = pages.filter((p) => p.up.length > 0);
      if (senders.length) {
        send(pick(senders));
      }
    } else if (page.down.length) {
      deliver(page);
    }
  }
  for (let round = 0; round < 100; round += 1) {
    pages.forEach(tick);
    if (!pages.some((p) => p.up.length || p.down.length)) {
      break;
    }
    for (const page of pages) {
      while (page.up.length) {
        send(page);
      }
    }
    for (const page of pages) {
      while (page.down.length) {
        deliver(page);
      }
    }
  }
  const reader = new NoteCrdt({ site: "reader" });
  reader.receive(server.note);
  return {
    server: reader.text,
    pages: pages.map((p) => p.crdt.text),
    pending: pages.map((p) => p.crdt.pending.size),
    typed,
  };
}

const count = (text, letter) => text.split(letter).length - 1;

describe("NoteCrdt", () => {
  test("typing, deleting and reading back", () => {
    const note = new NoteCrdt({ site: "s1" });
    note.edit("hello");
    note.edit("help!");
    assert.equal(note.text, "help!");
    const patch = note.takePatch();
    assert.equal(Object.keys(patch).length, 7); // 5 typed, 2 more typed, 2 of them tombstoned
    assert.ok(Object.values(patch).some((entry) => entry[2] === 1));
    assert.equal(note.takePatch(), null);

    const other = new NoteCrdt({ site: "s2" });
    other.receive({ chars: patch });
    assert.equal(other.text, "help!");
  });

  test("the server's echo empties what is pending", () => {
    const note = new NoteCrdt({ site: "s1" });
    note.edit("hi");
    const patch = note.takePatch();
    assert.equal(note.pending.size, 2);
    assert.equal(note.receive({ chars: patch }), false); // same text
    assert.equal(note.pending.size, 0);
  });

  test("a character typed after X goes right after X, even after others did the same", () => {
    const base = new NoteCrdt({ site: "s0" });
    base.edit("ac");
    const server = { chars: base.takePatch() };
    const ann = new NoteCrdt({ site: "ann" });
    const bob = new NoteCrdt({ site: "bob" });
    ann.receive(server);
    bob.receive(server);
    ann.edit("aXc");
    bob.edit("aYYc");
    const merged = applyMergePatch(applyMergePatch(server, { chars: ann.takePatch() }), {
      chars: bob.takePatch(),
    });
    ann.receive(merged);
    bob.receive(merged);
    assert.equal(ann.text, bob.text);
    assert.match(ann.text, /^a(XYY|YYX)c$/); // both words, never interleaved
  });

  test("emoji are one character each", () => {
    const note = new NoteCrdt({ site: "s1" });
    note.edit("😀");
    note.edit("😁");
    assert.equal(note.text, "😁");
    for (const entry of Object.values(note.takePatch())) {
      assert.equal([...entry[1]].length, 1);
      assert.equal(JSON.stringify(entry).includes("\\ud8"), false);
    }
  });

  test("a paste goes out over several writes, and a resend repeats what is unconfirmed", () => {
    const note = new NoteCrdt({ site: "s1" });
    note.edit("x".repeat(MAX_KEYS_PER_WRITE + 5));
    assert.equal(Object.keys(note.takePatch()).length, MAX_KEYS_PER_WRITE);
    assert.equal(Object.keys(note.takePatch()).length, 5);
    assert.equal(note.takePatch(), null);
    note.resend();
    assert.equal(Object.keys(note.takePatch()).length, MAX_KEYS_PER_WRITE);
  });

  test("a caret follows the character before it through remote typing", () => {
    const note = new NoteCrdt({ site: "s1" });
    note.edit("world");
    const server = { chars: note.takePatch() };
    note.receive(server);
    const anchor = note.anchorAt(5); // after the "d"
    const other = new NoteCrdt({ site: "s2" });
    other.receive(server);
    other.edit("hello world");
    note.receive(applyMergePatch(server, { chars: other.takePatch() }));
    assert.equal(note.text, "hello world");
    assert.equal(note.positionAfter(anchor), 11);
    assert.equal(note.positionAfter(""), 0);
  });

  test("ignores malformed entries", () => {
    const note = new NoteCrdt();
    note.receive({ chars: { "1.a": ["", "o"], "2.a": ["1.a", "k"], bad: 3, "3.b": [1, "x"] } });
    assert.equal(note.text, "ok");
    note.receive(undefined);
    assert.equal(note.text, "");
  });

  for (const letters of [["a", "b"], ["a", "b", "c"], ["a", "a", "b"], ["a", "b", "x"]]) {
    test(`pages ${letters.join("+")} end on the server's text, keeping every keystroke`, () => {
      for (let seed = 1; seed <= 200; seed += 1) {
        const run = simulate(seed, letters);
        for (const text of run.pages) {
          assert.equal(text, run.server, `seed ${seed}: a page differs from the server`);
        }
        assert.deepEqual(run.pending, letters.map(() => 0), `seed ${seed}: unconfirmed entries`);
        if (!letters.includes("x")) {
          for (const [letter, typed] of Object.entries(run.typed)) {
            assert.equal(count(run.server, letter), typed, `seed ${seed}: ${letter}`);
          }
        }
        assert.match(run.server, /\[[a-z]*\|[a-z]*\]/, `seed ${seed}`);
      }
    });
  }
});
