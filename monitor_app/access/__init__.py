"""Who may do what, and the record of it: API keys, audit trail, secret keys and sealed credentials."""
