"""Instrument code the application already has: the decorators and the trace block.

`spec` (how a decorated function is observed, decided once), `plan` (its chain: steps
and a route of retries and fallbacks), `wrappers` (one call, begun and ended), `streams`
(generators and provider streams, ended with them) and `trace` (``aisys.trace``).
"""

from aisys.instrument.spec import Spec
from aisys.instrument.trace import TraceBlock
from aisys.instrument.wrappers import instrument

__all__ = ["Spec", "TraceBlock", "instrument"]
