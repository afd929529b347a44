"""The command line: one module per command group; imports the layers, never imported by them."""
