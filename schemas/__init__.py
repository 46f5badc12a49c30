"""Pydantic contracts (XCreate/XUpdate/XPublic/XPage) and data files (YAML) read by the domain."""
