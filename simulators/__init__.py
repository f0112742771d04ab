"""Simulated parties for the demo, tests and benchmarks: pjsua2 callers, audio helpers, the 12345
partner simulator and the demo run. Nothing in the product imports this package."""
