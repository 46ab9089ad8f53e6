import gc

from django.apps import AppConfig

#: Young-generation threshold. The engine allocates many short-lived dicts per
#: tick; CPython's default (700) runs a collection every few hundred of them and
#: full collections walk every loaded module, which showed up as latency tails.
GC_GEN0_THRESHOLD = 50_000
#: Oldest-generation threshold (CPython's default: 10). A full collection walks every
#: object the process made since start-up (a thousand connections' protocol objects,
#: the rooms): 65-90 ms in the 1,000-player world, a p99 tail each time it lands.
#: Ten times rarer (and, as always, only once the objects that survived since the
#: last one are a quarter of those it kept); cycles that die young go as before.
GC_GEN2_THRESHOLD = 100


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = "Kasagi Sync engine"

    def ready(self) -> None:
        # What Django loaded at start-up lives for the whole process: keep the
        # collector from re-walking it, and collect the young generation less often.
        gc.freeze()
        gen0, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(max(GC_GEN0_THRESHOLD, gen0), gen1, max(GC_GEN2_THRESHOLD, gen2))
