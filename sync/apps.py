import gc

from django.apps import AppConfig

#: Young-generation threshold. The engine allocates many short-lived dicts per
#: tick; CPython's default (700) runs a collection every few hundred of them and
#: full collections walk every loaded module, which showed up as latency tails.
GC_GEN0_THRESHOLD = 50_000


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = "Kasagi Sync engine"

    def ready(self) -> None:
        # What Django loaded at start-up lives for the whole process: keep the
        # collector from re-walking it, and collect the young generation less often.
        gc.freeze()
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(max(GC_GEN0_THRESHOLD, gc.get_threshold()[0]), gen1, gen2)
