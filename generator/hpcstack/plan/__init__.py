"""The plan layer: every address, port, name and GPU assignment, derived once from a Stack."""
