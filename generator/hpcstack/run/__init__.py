"""One choke point per external tool (nvidia-smi, host probes, docker, aws, ssh)."""
