"""Multidimensional assessment (VMD): instruments as versioned data, assessments, scoring."""
