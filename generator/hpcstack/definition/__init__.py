"""The definition layer: stack.yaml as a typed model, loaded with positions and checked."""
