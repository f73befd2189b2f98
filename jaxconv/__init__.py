"""jaxconv: dynamics of social conventions as JAX arrays."""
