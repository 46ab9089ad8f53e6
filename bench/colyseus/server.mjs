// Colyseus 0.16 peer of bench.compare: one room type whose state is a MapSchema of
// players {x, y, t}, patched at the default rate (50 ms). Rooms are shared by the
// `room` join option. Usage: node server.mjs <port>
import { Room, Server } from "@colyseus/core";
import { MapSchema, schema } from "@colyseus/schema";
import { WebSocketTransport } from "@colyseus/ws-transport";

const Player = schema({ x: "number", y: "number", t: "number" });
const State = schema({ players: { map: Player } });

class BenchRoom extends Room {
  maxClients = 10000;

  onCreate() {
    this.setState(new State({ players: new MapSchema() }));
    this.onMessage("move", (client, move) => {
      const player = this.state.players.get(client.sessionId);
      if (player) {
        player.x = move.x;
        player.y = move.y;
        player.t = move.t;
      }
    });
  }

  onJoin(client, options) {
    this.state.players.set(client.sessionId, new Player({ x: options.x ?? 0, y: options.y ?? 0, t: 0 }));
  }

  onLeave(client) {
    this.state.players.delete(client.sessionId);
  }
}

const port = Number(process.argv[2] ?? 2567);
const server = new Server({ transport: new WebSocketTransport() });
server.define("bench", BenchRoom).filterBy(["room"]);
await server.listen(port, "127.0.0.1");
console.log(`colyseus listening on ${port}`);
