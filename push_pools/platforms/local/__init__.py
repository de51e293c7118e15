"""The `process` pool type: runs as subprocesses of the machine that ticks (`push-pool serve`, the demo)."""
