"""The SIP edge in front of several Asterisk nodes: Kamailio's generated config and its runtime."""
