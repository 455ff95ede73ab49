"""Tasks: the work behind each CLI verb, on files in and files out."""
