"""Provisioning: per-gateway credentials, broker entries (password file, ACL) and install bundles."""
