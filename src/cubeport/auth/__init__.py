"""Identity and access: who the caller is (accounts, keys, sessions, OIDC) and what they may see (policy)."""
