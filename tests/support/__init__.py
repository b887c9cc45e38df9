"""Test support shared by every pattern: in-memory fakes and realistic event builders."""
