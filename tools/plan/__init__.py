"""`make plan STACK=<stack>`: the offline review bundle of a change (resources, policy results,
rendered and scanned manifests), built with no cloud account."""
