"""hpc-stack: one definition file describes a hybrid Slurm cluster; hpc-stack makes it real."""

__version__ = "0.1.0"
