"""The backends steps share: memory, diskcache (one machine) and Redis (fleets).

Budgets keep their spend counters here (and the response cache its entries, as it
comes). Amounts are integers (nano-USD for budgets) so every backend adds exactly.
"""

from aisys.stores.base import Store, StoreOp
from aisys.stores.registry import (
    StoreRef,
    check_store,
    open_store,
    reset_memory_stores,
)

__all__ = [
    "Store",
    "StoreOp",
    "StoreRef",
    "check_store",
    "open_store",
    "reset_memory_stores",
]
