"""The DR drill: prove that a backup restores into a working service, through the API.

1. write a known data set through the running service (several users, threads with several
   checkpoints, store items) and read back what the API says about it (`dataset`);
2. take a backup with `agent-service backup`; 3. restore the newest complete backup with
   `agent-service restore --create` into a fresh database (`commands`); 4. start a second
   service instance on the restored database (`instance`); 5. read everything again through
   that instance and compare (`run`).
It reports RPO (age of the newest restorable backup when the restore starts) and RTO (start of
the restore to the instance's /ready 200). `python -m tools.drill` (make dr-drill) runs it against
the local environment (`.local/env`, see `target`); the core takes the endpoints as a `Target`.
That is the `dump` scenario; `pitr` (point-in-time recovery from the WAL archive) and
`region-loss` (from the Object-Locked replica, in an independent environment) are the others,
each naming the runbook it rehearses.
"""

from tools.drill.dataset import Snapshot, differences, snapshot, write_dataset
from tools.drill.run import restore_and_verify, run_drill
from tools.drill.target import Target, local_target
from tools.kit.load import say

__all__ = [
    "Snapshot",
    "Target",
    "differences",
    "local_target",
    "restore_and_verify",
    "run_drill",
    "say",
    "snapshot",
    "write_dataset",
]
