/**
 * The room page's side panel: connection facts, the players, the last
 * messages (pretty-printed), and the room state, read from a KasagiClient.
 *
 * It only reads the client (its properties, `stats` and events); it is
 * redrawn a few times a second, never per message, so a busy room does not
 * cost a layout per frame.
 *
 * @module kasagi/demo-panel
 */

import { utf8Length } from "./client.js";

/**
 * "512 B", "1.4 KB", "2.0 MB".
 *
 * @param {number} bytes
 * @returns {string}
 */
export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) {
    return "–";
  }
  if (bytes < 1024) {
    return `${Math.round(bytes)} B`;
  }
  if (bytes < 1024 * 1024) {
    return `${(bytes / 1024).toFixed(1)} KB`;
  }
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * "1.1 KB/s bin1 (JSON: 4.2 KB/s, 26%) · 80 msgs, 9.0 KB total": the receive rate in
 * the socket's codec, and what the same frames would have weighed as JSON text.
 *
 * @param {{codec?: string, bytesPerSecond: number, jsonBytesPerSecond?: number,
 *   messagesReceived: number, bytesReceived: number}} stats a ClientStats
 * @returns {string}
 */
export function rateSummary(stats) {
  const codec = stats.codec ?? "json";
  let rate = `${formatBytes(stats.bytesPerSecond)}/s ${codec}`;
  const json = stats.jsonBytesPerSecond;
  if (codec !== "json" && json > 0) {
    rate += ` (JSON: ${formatBytes(json)}/s, ${Math.round((100 * stats.bytesPerSecond) / json)}%)`;
  }
  return `${rate} · ${stats.messagesReceived} msgs, ${formatBytes(stats.bytesReceived)} total`;
}

/**
 * "83 B vs 1.2 KB (7%)": delta bytes against what full states would have cost.
 *
 * @param {number} deltaBytes
 * @param {number} fullBytes
 * @returns {string}
 */
export function deltaSummary(deltaBytes, fullBytes) {
  const share = fullBytes > 0 ? Math.round((100 * deltaBytes) / fullBytes) : 100;
  return `${formatBytes(deltaBytes)} vs ${formatBytes(fullBytes)} as full state (${share}%)`;
}

/**
 * "recovered 20 changes (3.1 KB) instead of a full state (512.0 KB)": what the
 * last resume by version (§14, `client.stats.lastRecovery`) cost against the
 * FULL_STATE it replaced. `fullBytes` is the JSON size of the state the client
 * holds once caught up.
 *
 * @param {{changes: number, bytes: number, fullBytes: number, done?: boolean} | null} recovery
 * @returns {string}
 */
export function recoverySummary(recovery) {
  if (!recovery) {
    return "no resume by version yet";
  }
  if (recovery.done === false) {
    return "recovering…";
  }
  const changes = recovery.changes === 1 ? "1 change" : `${recovery.changes} changes`;
  return (
    `recovered ${changes} (${formatBytes(recovery.bytes)}) ` +
    `instead of a full state (${formatBytes(recovery.fullBytes)})`
  );
}

/**
 * The panel's "Recovery" fact: the template's `#fact-recovery`, or a new
 * row appended to the facts list (after "Chain") when the page has none.
 *
 * @param {HTMLElement} chain the `#fact-chain` element
 * @returns {HTMLElement}
 */
function recoveryFact(chain) {
  const existing = document.getElementById("fact-recovery");
  if (existing) {
    return existing;
  }
  const value = el("dd", "", "–");
  value.id = "fact-recovery";
  chain.parentElement.append(el("dt", "", "Recovery"), value);
  return value;
}

/**
 * Delta frames against the frames a server sending full states instead would
 * have sent: the same envelope around the whole state rather than the patch.
 */
export class DeltaSavings {
  constructor() {
    this.lastDelta = 0;
    this.lastFull = 0;
    this.totalDelta = 0;
    this.totalFull = 0;
  }

  /**
   * @param {number} frameBytes the DELTA_UPDATE frame
   * @param {number} patchBytes its payload
   * @param {number} stateBytes the state after it
   */
  add(frameBytes, patchBytes, stateBytes) {
    this.lastDelta = frameBytes;
    this.lastFull = frameBytes - patchBytes + stateBytes;
    this.totalDelta += this.lastDelta;
    this.totalFull += this.lastFull;
  }
}

/** The last messages, newest first, as a bounded list. */
export class MessageLog {
  /**
   * @param {number} [size=12]
   */
  constructor(size = 12) {
    this.size = size;
    /** @type {{direction: string, message: object, bytes: number, at: number}[]} */
    this.entries = [];
    this.total = 0;
  }

  /**
   * @param {{direction: string, message: object, bytes: number}} entry
   * @param {number} at epoch ms
   */
  add({ direction, message, bytes }, at) {
    this.total += 1;
    this.entries.unshift({ direction, message, bytes, at });
    if (this.entries.length > this.size) {
      this.entries.length = this.size;
    }
  }
}

const PRETTY_LIMIT = 1500;

/**
 * @param {object} message
 * @returns {string}
 */
function pretty(message) {
  const text = JSON.stringify(message, null, 2);
  return text.length > PRETTY_LIMIT ? `${text.slice(0, PRETTY_LIMIT)}\n…` : text;
}

/**
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElement}
 */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/**
 * A swatch + name + id + position line for one player.
 *
 * @param {string} id
 * @param {any} player
 * @param {string | null} me
 * @returns {HTMLLIElement}
 */
function playerItem(id, player, me) {
  const item = /** @type {HTMLLIElement} */ (el("li"));
  item.dataset.playerId = id;
  const swatch = el("span", "swatch");
  swatch.style.background = typeof player?.color === "string" ? player.color : "#888";
  const name = el("span", "player-name", String(player?.playerName ?? id));
  item.append(swatch, name);
  if (id === me) {
    item.append(el("span", "tag", "you"));
  }
  const where = Number.isFinite(player?.x) && Number.isFinite(player?.y)
    ? ` ${Math.round(player.x)},${Math.round(player.y)}`
    : "";
  item.append(el("span", "muted player-id", `${id}${where}`));
  return item;
}

/**
 * Bind the panel to a client. Returns `render()`, to call on an interval.
 * After a resume answered RESUMED (§14) the "Recovery" fact shows what it
 * cost: "recovered N changes (B bytes) instead of a full state (F bytes)".
 *
 * @param {import("./client.js").KasagiClient} client
 * @param {{spectate: boolean}} options
 * @returns {{render: () => void, log: MessageLog, savings: DeltaSavings}}
 */
export function createPanel(client, { spectate }) {
  const $ = (id) => document.getElementById(id);
  const facts = {
    status: $("fact-status"),
    player: $("fact-player"),
    version: $("fact-version"),
    rtt: $("fact-rtt"),
    rate: $("fact-rate"),
    delta: $("fact-delta"),
    deltas: $("fact-deltas"),
    chain: $("fact-chain"),
  };
  facts.recovery = recoveryFact(facts.chain);
  const playersList = $("players-list");
  const playersCount = $("players-count");
  const logList = $("log");
  const logPause = /** @type {HTMLInputElement} */ ($("log-pause"));
  const logSent = /** @type {HTMLInputElement} */ ($("log-sent"));
  const stateJson = $("state-json");
  const stateSection = stateJson.closest("details");

  const log = new MessageLog();
  const savings = new DeltaSavings();
  let logShown = -1;
  let playersShown = null;
  let stateShown = null;

  client.on("message", (entry) => {
    if (entry.direction === "out" && !logSent.checked) {
      return;
    }
    log.add(entry, Date.now());
  });
  client.on("delta", ({ patch }) => {
    const stats = client.stats;
    savings.add(stats.lastDeltaBytes, utf8Length(JSON.stringify(patch)), stats.stateBytes);
  });

  function renderFacts() {
    const stats = client.stats;
    facts.status.textContent = client.synced ? `${client.status}, in sync` : client.status;
    if (spectate) {
      facts.player.textContent = "spectator (no player)";
    } else {
      const resumed = client.resumed ? " (resumed)" : "";
      facts.player.textContent = client.playerId ? `${client.playerId}${resumed}` : "–";
    }
    facts.version.textContent = client.version ?? "–";
    facts.rtt.textContent = stats.lastRtt == null ? "–" : `${stats.lastRtt.toFixed(1)} ms`;
    facts.rate.textContent = rateSummary(stats);
    if (savings.totalDelta === 0) {
      facts.delta.textContent = facts.deltas.textContent = "no delta yet";
    } else {
      facts.delta.textContent = deltaSummary(savings.lastDelta, savings.lastFull);
      facts.deltas.textContent = deltaSummary(savings.totalDelta, savings.totalFull);
    }
    facts.chain.textContent =
      `${stats.gaps} gaps, ${stats.resyncs} resyncs, ${stats.reconnects} reconnects`;
    facts.recovery.textContent = recoverySummary(stats.lastRecovery);
  }

  function renderPlayers() {
    const players = client.state?.players ?? {};
    if (players === playersShown) {
      return;
    }
    playersShown = players;
    const ids = Object.keys(players).sort((a, b) =>
      String(players[a]?.playerName ?? a).localeCompare(String(players[b]?.playerName ?? b)),
    );
    playersCount.textContent = String(ids.length);
    playersList.replaceChildren(...ids.map((id) => playerItem(id, players[id], client.playerId)));
  }

  function renderLog() {
    if (logPause.checked || log.total === logShown) {
      return;
    }
    logShown = log.total;
    const time = new Intl.DateTimeFormat(undefined, {
      hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3,
    });
    logList.replaceChildren(
      ...log.entries.map(({ direction, message, bytes, at }) => {
        const item = el("li", `log-${direction}`);
        const head = el("div", "log-head");
        head.append(
          el("span", "dir", direction === "in" ? "↓" : "↑"),
          el("strong", "", String(message.type)),
          el("span", "muted", `${formatBytes(bytes)} · ${time.format(at)}`),
        );
        item.append(head, el("pre", "json", pretty(message)));
        return item;
      }),
    );
  }

  function renderState() {
    if (!stateSection.open || client.state === stateShown) {
      return;
    }
    stateShown = client.state;
    stateJson.textContent = client.state
      ? JSON.stringify({ version: client.version, state: client.state }, null, 2)
      : "";
  }

  return {
    log,
    savings,
    render() {
      renderFacts();
      renderPlayers();
      renderLog();
      renderState();
    },
  };
}
