/**
 * Documents (PROTOCOL.md §16) on the Kasagi client: a Y.Doc kept in sync
 * with one document of the client's room.
 *
 *   import { KasagiDoc, Y } from "/static/kasagi/documents.js";
 *   const note = new KasagiDoc(client, "note");
 *   note.doc.getText("note").insert(0, "hello");   // sent as DOC_UPDATE
 *
 * After every join and rejoin (a `joined` event, also after a reconnect) it
 * sends DOC_SYNC with its state vector; the answer brings what it lacks, and
 * it sends back what the server lacks (from the server's state vector). Local
 * changes go out as DOC_UPDATE at once; the other members' come in as `doc`
 * events and are applied with this binding as the origin (so they are not
 * sent back). An update made while the socket is away is not queued: the next
 * DOC_SYNC exchange carries it. `yjs` itself is the pinned package vendored
 * into `vendor/yjs.mjs` (clients/js-yjs/build.mjs), re-exported here as `Y`.
 *
 * @module kasagi/documents
 */

import * as Y from "./vendor/yjs.mjs";

export { Y };

export class KasagiDoc {
  /**
   * @param {import("./client.js").KasagiClient} client
   * @param {string} docId
   * @param {{doc?: Y.Doc}} [options]
   */
  constructor(client, docId, { doc = new Y.Doc() } = {}) {
    this.client = client;
    this.docId = docId;
    this.doc = doc;
    /** True once a DOC_SYNC answer was applied (on this socket or an earlier one). */
    this.synced = false;
    /** @type {Set<(detail: {docId: string}) => void>} */
    this.onSynced = new Set();
    this.onUpdate = (update, origin) => {
      if (origin !== this) {
        client.docUpdate(docId, update);
      }
    };
    doc.on("update", this.onUpdate);
    this.off = [
      client.on("doc", (detail) => this.receive(detail)),
      client.on("joined", ({ self }) => {
        if (self) {
          this.sync();
        }
      }),
    ];
    if (client.synced) {
      this.sync();
    }
  }

  /** Send DOC_SYNC (done for you after every join). */
  sync() {
    return this.client.docSync(this.docId, Y.encodeStateVector(this.doc));
  }

  /** @param {{type: string, docId: string, update: Uint8Array, stateVector: Uint8Array | null}} detail */
  receive({ type, docId, update, stateVector }) {
    if (docId !== this.docId) {
      return;
    }
    Y.applyUpdate(this.doc, update, this);
    if (type === "sync" && stateVector) {
      const missing = Y.encodeStateAsUpdate(this.doc, stateVector);
      if (missing.length > 2) {
        this.client.docUpdate(this.docId, missing); // what the server lacks
      }
      this.synced = true;
      for (const fn of this.onSynced) {
        fn({ docId });
      }
    }
  }

  /** Stop following the document (the Y.Doc stays as it is). */
  destroy() {
    this.doc.off("update", this.onUpdate);
    for (const off of this.off) {
      off();
    }
  }
}
