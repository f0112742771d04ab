"""The composition root and the `hotline` command line: builds each daemon's services from config
and hands each only what it needs."""
