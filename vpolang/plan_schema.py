"""The plan's JSON schema, a documented public artifact: `python -m vpolang.plan_schema > spec/plan.schema.json`."""
from __future__ import annotations

import json

from .plan import SCHEMA_VERSION, Plan


def plan_json_schema() -> str:
    schema = Plan.model_json_schema()
    schema["$comment"] = (f"vpo plan schema_version {SCHEMA_VERSION}; readers accept the same MAJOR and a "
                          "MINOR up to their own (MINOR bumps only add optional fields).")
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(plan_json_schema(), end="")
