"""Packaged data: the storyboards that ship. No code; the YAML files beside this are what marketing edits."""
