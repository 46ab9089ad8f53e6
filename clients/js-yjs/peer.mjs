// Real yjs peers against a Kasagi server (PROTOCOL.md §16), for the interop test
// (tests/interop/test_yjs.py). Each peer is a Y.Doc on its own WebSocket (the `ws`
// package: Node 20 has no global WebSocket) speaking DOC_SYNC / DOC_UPDATE in JSON.
//
//   node peer.mjs <ws-url> <room> <peers> <edits> <seed>
//
// Stdout lines, one JSON object each: {"event":"edited"} once every peer made its
// edits and the server merged them (a PING barrier); then, after a line "sync" on
// stdin, {"event":"result", ...}: each peer's text after a final DOC_SYNC, the text
// a late joiner gets, and the answer to a garbage update.
import { createInterface } from "node:readline";
import WebSocket from "ws";
import * as Y from "yjs";

const [url, room, peerCount, editCount, seedArg] = process.argv.slice(2);
let seed = Number(seedArg) || 1;
const random = () => {
  // mulberry32: a seeded generator, so a failing run can be replayed
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const b64 = (bytes) => Buffer.from(bytes).toString("base64");
const unb64 = (text) => new Uint8Array(Buffer.from(text, "base64"));

class Peer {
  constructor(name) {
    this.name = name;
    this.doc = new Y.Doc();
    this.text = this.doc.getText("note");
    this.waiting = new Map();
    this.errors = [];
    this.doc.on("update", (update, origin) => {
      if (origin !== this) this.send("DOC_UPDATE", { docId: "note", update: b64(update) });
    });
  }

  async open() {
    this.ws = new WebSocket(url);
    this.ws.on("message", (data) => this.receive(JSON.parse(data.toString())));
    await new Promise((resolve, reject) => {
      this.ws.once("open", resolve);
      this.ws.once("error", reject);
    });
    const full = await this.request("JOIN_ROOM", { playerName: this.name }, "FULL_STATE");
    this.playerId = full.payload.playerId;
    await this.sync();
    return full;
  }

  send(type, payload, requestId) {
    const frame = { type, roomId: room, payload };
    if (requestId !== undefined) frame.requestId = requestId;
    this.ws.send(JSON.stringify(frame));
  }

  request(type, payload, answer) {
    const requestId = `${this.name}-${Math.floor(random() * 1e9)}`;
    return new Promise((resolve) => {
      this.waiting.set(answer === "FULL_STATE" ? "FULL_STATE" : requestId, resolve);
      this.send(type, payload, requestId);
    });
  }

  receive(frame) {
    if (frame.type === "DOC_UPDATE") {
      Y.applyUpdate(this.doc, unb64(frame.payload.update), this);
    } else if (frame.type === "ERROR") {
      this.errors.push(frame);
    }
    if (frame.type === "DOC_SYNC") {
      Y.applyUpdate(this.doc, unb64(frame.payload.update), this);
      // what the server lacks, from its state vector
      const missing = Y.encodeStateAsUpdate(this.doc, unb64(frame.payload.stateVector));
      if (missing.length > 2) this.send("DOC_UPDATE", { docId: "note", update: b64(missing) });
    }
    const key = frame.type === "FULL_STATE" ? "FULL_STATE" : frame.requestId;
    const resolve = this.waiting.get(key);
    if (resolve !== undefined) {
      this.waiting.delete(key);
      resolve(frame);
    }
  }

  sync() {
    const vector = b64(Y.encodeStateVector(this.doc));
    return this.request("DOC_SYNC", { docId: "note", stateVector: vector }, "DOC_SYNC");
  }

  barrier() {
    return this.request("PING", {}, "PONG");
  }

  randomEdit() {
    const length = this.text.length;
    if (length > 0 && random() < 0.3) {
      const at = Math.floor(random() * length);
      this.text.delete(at, Math.min(length - at, 1 + Math.floor(random() * 3)));
    } else {
      const at = Math.floor(random() * (length + 1));
      this.text.insert(at, this.name[0].repeat(1 + Math.floor(random() * 3)));
    }
  }
}

const say = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once("line", resolve));

const peers = [];
for (let n = 0; n < Number(peerCount); n++) peers.push(new Peer(`${"abcdefgh"[n]}js${n}`));
await Promise.all(peers.map((peer) => peer.open()));
// concurrent random edits: every peer edits between the others' without waiting
for (let round = 0; round < Number(editCount); round++) {
  for (const peer of peers) peer.randomEdit();
  if (round % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
}
await Promise.all(peers.map((peer) => peer.barrier()));
say({ event: "edited" });
await nextLine();
for (let pass = 0; pass < 2; pass++) {
  await Promise.all(peers.map((peer) => peer.sync()));
  await Promise.all(peers.map((peer) => peer.barrier()));
}
const late = new Peer("late");
const full = await late.open();
const garbage = await late.request("DOC_UPDATE", { docId: "note", update: b64(Uint8Array.of(7, 255, 0, 1, 2, 3)) }, "ERROR");
const badBase64 = await late.request("DOC_UPDATE", { docId: "note", update: "%%%" }, "ERROR");
await late.sync();
say({
  event: "result",
  texts: peers.map((peer) => peer.text.toString()),
  late: late.text.toString(),
  docs: full.payload.docs,
  garbage: garbage.payload.code,
  badBase64: badBase64.payload.code,
  errors: peers.flatMap((peer) => peer.errors),
  v1: b64(Y.encodeStateAsUpdate(late.doc)),
});
for (const peer of [...peers, late]) peer.ws.close();
lines.close();
