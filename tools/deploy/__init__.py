"""`make deploy`: the preflight, then `pulumi up --policy-pack policies`."""
