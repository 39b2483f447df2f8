"""Built-in elements, one module per family."""
