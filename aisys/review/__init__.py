"""Human review and handoff: a queue of calls for a person to check, and their decisions.

``aisys.ReviewQueue()`` (SQLite in ``cache_dir``; ``"postgresql://…"`` for fleets) holds
items: calls queued by a guard (``action="review"`` or ``"handoff"``), by
``LLM(review=aisys.Review(sample=, below=))``, or by hand (``queue.submit``). A decision
(accepted, corrected, rejected) is recorded once, as a ``human_review`` score on the
reviewed call, and `export` turns accepted and corrected items into dataset cases.
Inputs and outputs are kept as the ``review_content`` setting says (``redacted`` by
default); secrets are masked whatever it says.
"""

from aisys.review.queue import Review, ReviewItem, ReviewQueue

__all__ = ["Review", "ReviewItem", "ReviewQueue"]
