"""Helpers behind the test fixtures: real DICOM peers and synthetic files."""
