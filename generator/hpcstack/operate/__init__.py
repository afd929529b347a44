"""The operate layer: generate, up/down/wait, status, deploy, AWS secrets, doctor."""
