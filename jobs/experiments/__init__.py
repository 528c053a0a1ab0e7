"""Experiments: adaptive allocation of storyboards per segment, and the statistics to trust it."""
