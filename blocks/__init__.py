"""Hardened building blocks and the L3 construct of each pattern."""
