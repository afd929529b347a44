"""hpcstack: only the Slurm exporter is installed in this image."""
