"""Agents: the agent service (login/ready/pause via AMI) and the pjsua2 softphone client."""
