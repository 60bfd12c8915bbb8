"""A run's files, the same under either engine (Dassl or the bundled one): checkpoints in Dassl's layout
holding plain data, committed atomically per epoch (`checkpoint`), the console log (`run_log`), the
guarded output folder with its lock, leftovers and recorded config (`output_folder`), and the rules
every config key is checked against before a run (`options`). Project code, not part of the Dassl shim:
`dassl_compat` only mixes `checkpoint.CheckpointMixin` into whichever TrainerX is active."""
