"""The data's first room: built-in targets, reading and writing tables, and the encoders that map
columns to what the network sees (and back)."""
