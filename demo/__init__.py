"""Demo drivers (not part of the product): see demo/README.md."""
