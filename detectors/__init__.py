"""Which of a tenant's active forget targets a conversation touches."""
