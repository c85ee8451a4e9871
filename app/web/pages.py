"""H5 pages (the badge page arrives with the stalls feature)."""
