"""The plan's JSON schema, a documented public artifact: `python -m vpolang.plan_schema > spec/plan.schema.json`."""
from __future__ import annotations

import json

from .plan import SCHEMA_VERSION, Plan


def plan_json_schema() -> str:
    schema = Plan.model_json_schema()
    schema["$comment"] = (f"vpo plan schema_version {SCHEMA_VERSION}; readers accept the same MAJOR and a "
                          "MINOR up to their own. MINOR bumps only add optional fields: a field added to a job "
                          "config (a stage schema) with a default that keeps the old behaviour, which a plan "
                          "written before it leaves out. Removing, renaming or retyping a field, or adding a "
                          "required one, is a MAJOR bump. Each job's `config` is the model of its kind, chosen "
                          "by `config.kind`, which equals the job's `kind`.")
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(plan_json_schema(), end="")
