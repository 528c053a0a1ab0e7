"""Packaged data: the sample customer records and the sample campaign. No code."""
