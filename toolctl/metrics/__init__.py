"""Metrics: one function per question, SQL in ``queries/*.sql``, results as plain rows."""
