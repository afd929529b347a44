"""The output layer: the one atomic writer, the manifest, secrets and the saved plan."""
