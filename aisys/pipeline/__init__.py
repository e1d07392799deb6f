"""The call pipeline: decisions as flows that yield effects, driven sync or async."""
