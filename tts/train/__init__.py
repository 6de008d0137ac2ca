"""Training: LightningModules (systems) for each stage and the run orchestration."""
