"""The pure core: config models and their one loader, routing and workflow, schedules, access rules,
the definition of every figure (kpi.py), the call record's shape and the dialplan contract. No I/O
beyond reading config files; every other package may import it, it imports none of them."""
