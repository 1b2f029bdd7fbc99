"""Schemas: one per stage kind, modifier, and constructor. They drive validation, defaults, `vpo explain`
and the spec's field tables; no other list of fields exists."""
