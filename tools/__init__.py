"""The programs behind the make verbs, one folder per verb."""
