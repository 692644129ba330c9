"""The core every memory class is built on: the plan driver, the table catalog, migrations,
and the helpers of model-written memories (structured answers, name keys)."""
