"""Declarative IVR flows: menus and prompt texts per language, loaded from YAML in this folder."""
