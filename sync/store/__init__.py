"""Room state stores: the authority that applies changes and hands them to the hub.

``memory.MemoryRoomStore`` keeps rooms in this process (the default);
``redis`` shares them between processes when ``REDIS_URL`` is set.
"""
