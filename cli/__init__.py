"""`aiwf`: the command line for flows and tasks, against the local stack or a deployed stage."""
