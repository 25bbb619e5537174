"""The base of every error a user can cause and fix. main.py prints these as one line, exit 2."""


class UserFacingError(Exception):
    """Subclass this for errors whose message names the problem and the fix."""
