"""List+watch informers that stream cluster state into Kollie's cache, and leader-elected loops."""
