"""The bundled CNM schema and the validators generated from it (tools/gen_validators.py)."""
