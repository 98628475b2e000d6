"""cnm-ingest: the operator's console CLI (not shipped in the Lambda packages)."""
