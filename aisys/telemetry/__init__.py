"""Telemetry: the only package that writes spans, metrics and log events.

Other modules put facts on a `aisys.call.Call`; `Telemetry` turns them into OTel spans
and metrics and one structlog event per call.
"""
