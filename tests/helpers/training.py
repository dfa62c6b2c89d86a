"""Training parameters small enough for tests: the shared model, and the tests that train their own."""

from __future__ import annotations

SMALL_TRAIN_PARAMS = {"max_iter": 60}
TINY_TRAIN_PARAMS = {"max_iter": 15, "max_leaf_nodes": 15, "origin_step": 8}
