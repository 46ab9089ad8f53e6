// Document support (§16): KasagiDoc over a fake client, the note's text helpers.
import assert from "node:assert/strict";
import { test } from "node:test";

import { fromBinary, toBase64 } from "../client.js";
import { mapThroughDelta, textChange } from "../demo-note.js";
import { KasagiDoc, Y } from "../documents.js";

/** A client that records what it sends and lets the test emit events. */
class FakeClient {
  constructor() {
    this.sent = [];
    this.listeners = new Map();
    this.synced = true;
  }
  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
    return () => this.listeners.get(name).delete(fn);
  }
  emit(name, detail) {
    for (const fn of this.listeners.get(name) ?? []) fn(detail);
  }
  docSync(docId, stateVector) {
    this.sent.push({ type: "DOC_SYNC", docId, stateVector });
    return "s";
  }
  docUpdate(docId, update) {
    this.sent.push({ type: "DOC_UPDATE", docId, update });
    return "u";
  }
}

test("base64 round-trips bytes, and bytes pass as they are", () => {
  const bytes = Uint8Array.from({ length: 70000 }, (_, i) => i % 251);
  assert.deepEqual(fromBinary(toBase64(bytes)), bytes);
  assert.equal(fromBinary(bytes), bytes);
  assert.equal(fromBinary("%%%"), null);
  assert.equal(toBase64(Uint8Array.of(104, 105)), "aGk=");
});

test("a KasagiDoc syncs on join, sends local updates and applies remote ones", () => {
  const client = new FakeClient();
  const bound = new KasagiDoc(client, "note");
  assert.equal(client.sent[0].type, "DOC_SYNC"); // synced client: at once
  bound.doc.getText("note").insert(0, "hi");
  assert.equal(client.sent[1].type, "DOC_UPDATE");
  // another peer's update comes in: applied, not sent back
  const other = new Y.Doc();
  Y.applyUpdate(other, client.sent[1].update);
  other.getText("note").insert(2, "!");
  const remote = Y.encodeStateAsUpdate(other, Y.encodeStateVector(bound.doc));
  client.emit("doc", { type: "update", docId: "note", update: remote, stateVector: null });
  assert.equal(bound.doc.getText("note").toString(), "hi!");
  assert.equal(client.sent.length, 2);
  // a sync answer with an empty server: everything local goes back as one update
  client.emit("doc", { type: "sync", docId: "note", update: Uint8Array.of(0, 0),
                       stateVector: Uint8Array.of(0) });
  assert.equal(client.sent.at(-1).type, "DOC_UPDATE");
  assert.equal(bound.synced, true);
  client.emit("joined", { self: true });
  assert.equal(client.sent.at(-1).type, "DOC_SYNC"); // every (re)join syncs again
  client.emit("doc", { type: "update", docId: "other", update: remote, stateVector: null });
  bound.destroy();
  client.emit("joined", { self: true });
  assert.equal(client.sent.at(-1).type, "DOC_SYNC");
  assert.equal(client.sent.filter((m) => m.type === "DOC_SYNC").length, 2);
});

test("textChange finds the one range on code points", () => {
  assert.deepEqual(textChange("a🌸b", "a🌼b"), { start: 1, removed: 2, inserted: "🌼" });
  assert.deepEqual(textChange("abc", "abxc"), { start: 2, removed: 0, inserted: "x" });
  assert.equal(textChange("same", "same"), null);
});

test("a caret moves through a remote change", () => {
  assert.equal(mapThroughDelta(3, [{ insert: "xy" }]), 5);
  assert.equal(mapThroughDelta(3, [{ retain: 3 }, { insert: "xy" }]), 3); // at the caret: before
  assert.equal(mapThroughDelta(3, [{ retain: 1 }, { delete: 1 }]), 2);
  assert.equal(mapThroughDelta(3, [{ retain: 1 }, { delete: 5 }]), 1);
  assert.equal(mapThroughDelta(3, [{ retain: 5 }, { delete: 1 }]), 3);
});
