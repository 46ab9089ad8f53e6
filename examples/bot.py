"""A bot that joins a Kasagi room and wanders: python examples/bot.py [URL] [ROOM] [SECONDS]."""

import asyncio
import contextlib
import random
import sys

import kasagi_client


async def main(url: str, room: str, seconds: float) -> None:
    async with kasagi_client.connect(url) as client:
        await client.join(room, playerName=f"bot-{random.randrange(10_000)}", x=500, y=500)
        print(f"joined {room} as {client.player_id} at version {client.version}")
        x = y = 500
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            x = min(1000, max(0, x + random.randint(-5, 5)))
            y = min(1000, max(0, y + random.randint(-5, 5)))
            try:
                await client.update(x=x, y=y)  # fire-and-forget; the mirror follows the deltas
            except kasagi_client.NotConnected:
                await client.wait_ready()  # reconnecting: the SDK resumes our player
            await asyncio.sleep(0.1)
        print(f"at version {client.version}, me = {client.me}")


if __name__ == "__main__":
    args = sys.argv[1:]
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C: leave the room and exit quietly
        asyncio.run(main(args[0] if args else "ws://127.0.0.1:8080/sync",
                         args[1] if len(args) > 1 else "game-lobby-1",
                         float(args[2]) if len(args) > 2 else float("inf")))
