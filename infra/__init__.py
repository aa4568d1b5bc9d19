"""The Pulumi program: one ComponentResource per concern, wired together in `program.py`."""
