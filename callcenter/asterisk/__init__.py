"""Asterisk adapters: config generation, the rootfs/instance runtime, and the AMI client."""
