"""Packaged data: fonts (with their licences), brand images and audio beds. No code."""
