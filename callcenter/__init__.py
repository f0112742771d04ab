"""12348 hotline controller: routing, call tracking and the Asterisk adapters."""
