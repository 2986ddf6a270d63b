"""The web application package; see main.py."""
