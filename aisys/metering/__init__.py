"""Token counting and, later, prices: what a call used and what it cost."""
