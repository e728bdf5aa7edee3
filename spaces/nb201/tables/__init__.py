"""Packaged data files (see README.md beside this file); no code."""
